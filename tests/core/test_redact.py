from __future__ import annotations

import pytest

from platebridge.core.redact import redact_text, strip_credentials


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("rtsp://admin:hunter2@192.168.1.50:554/stream", "rtsp://192.168.1.50:554/stream"),
        ("rtsp://admin@192.168.1.50/stream", "rtsp://192.168.1.50/stream"),
        ("rtsp://192.168.1.50:554/stream", "rtsp://192.168.1.50:554/stream"),
        ("rtsp://u:p%40ss@[fd00::5]:8554/live?x=1", "rtsp://[fd00::5]:8554/live?x=1"),
    ],
)
def test_strip_credentials(url: str, expected: str) -> None:
    assert strip_credentials(url) == expected


def test_redact_text_masks_every_kind_of_secret() -> None:
    line = (
        "Error opening rtsp://admin:hunter2@10.0.0.5/stream; GET /stream?token=abc.def&x=1 "
        "Authorization: Bearer pbk_SeCrEtKeY123 and pbk_otherKey-9, secret s3cr3tvalue"
    )
    out = redact_text(line, secrets=["s3cr3tvalue"])
    for secret in (
        "hunter2",
        "admin:",
        "abc.def",
        "pbk_SeCrEtKeY123",
        "pbk_otherKey-9",
        "s3cr3tvalue",
    ):
        assert secret not in out
    assert "10.0.0.5/stream" in out
    assert "x=1" in out
