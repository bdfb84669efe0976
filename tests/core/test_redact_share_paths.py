"""Share-link secrets in every form a log line may carry them: the access log's request line
(``/s/<secret>``, ``/clip.mp4``, ``/media``), a URL-encoded link in a query string
(``next=%2Fs%2Fpbs_…``: a word character before the prefix), a full URL, the secret without
its prefix — and uvicorn's own access formatter over a real record."""

from __future__ import annotations

import logging

import pytest

from platebridge.core.redact import redact_log_text, redact_record, redact_text
from platebridge.portal.log_redaction import RedactFilter
from platebridge.portal.services.shares import new_secret

SECRET = new_secret()
RANDOM = SECRET.removeprefix("pbs_")


@pytest.mark.parametrize(
    "line",
    [
        f'127.0.0.1:5 - "GET /s/{SECRET} HTTP/1.1" 200',
        f'127.0.0.1:5 - "GET /s/{SECRET}/clip.mp4 HTTP/1.1" 502',
        f'127.0.0.1:5 - "GET /s/{SECRET}/media?start=1.5&duration=10 HTTP/1.1" 200',
        f'"GET /login?next=%2Fs%2F{SECRET} HTTP/1.1" 200',
        f'"GET /login?next=%2fs%2f{SECRET}%2Fclip.mp4 HTTP/1.1" 200',
        f"share url=https%3A%2F%2Fportal.example%2Fs%2F{SECRET}",
        f"https://portal.example/s/{SECRET}",
        f"GET /s/{RANDOM}/clip.mp4",
        f"x{SECRET}",
    ],
)
def test_share_secret_never_survives(line: str) -> None:
    for redact in (redact_text, redact_log_text):
        out = redact(line)
        assert RANDOM not in out, out
        assert "***" in out


@pytest.mark.parametrize(
    "text",
    [
        "rtsp://10.0.0.5/s/live",
        "GET /s/short/media HTTP/1.1",
        "/api/pods/s/",
        "GET /static/playback.js HTTP/1.1",
    ],
)
def test_short_share_like_paths_are_left_alone(text: str) -> None:
    assert redact_text(text) == text


def test_uvicorn_access_formatter_prints_the_path_masked() -> None:
    """uvicorn's access formatter reads the request line from ``record.args``: after the
    portal's filter, the formatted line keeps method, path shape and status, not the secret."""
    from uvicorn.logging import AccessFormatter

    for path in (f"/s/{SECRET}/media?start=1&duration=2", f"/login?next=%2Fs%2F{SECRET}"):
        record = logging.LogRecord(
            "uvicorn.access", logging.INFO, __file__, 1,
            '%s - "%s %s HTTP/%s" %d', ("127.0.0.1:50000", "GET", path, "1.1", 200), None,
        )  # fmt: skip
        assert RedactFilter().filter(record)
        line = AccessFormatter("%(client_addr)s - %(request_line)s %(status_code)s").format(record)
        assert RANDOM not in line, line
        assert "GET /" in line and "pbs_***" in line and line.endswith("200 OK")


def test_a_record_built_before_the_filter_is_redacted_once() -> None:
    record = logging.LogRecord(
        "platebridge.portal", logging.WARNING, __file__, 1, "share %s opened from %s",
        (f"/s/{SECRET}", "127.0.0.1"), None,
    )  # fmt: skip
    redact_record(record)
    redact_record(record)
    assert RANDOM not in record.getMessage() and "/s/pbs_***" in record.getMessage()
