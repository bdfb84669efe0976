"""bench/footage_seek --smoke (640x360 clock camera, one view per method, page cache kept):
runs end to end through proxy and tunnel and writes its JSON; the figures are not checked
(timing goals live in bench/ only)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import footage_seek
from tests.support.camera import camera_available

pytestmark = pytest.mark.e2e


def test_footage_seek_smoke(tmp_path: Path) -> None:
    if not camera_available() or not Path(footage_seek.CHROMIUM).exists():
        pytest.fail("needs GStreamer's RTSP server, ffmpeg and Chromium")
    result = footage_seek.main(["--smoke", "--warm", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "footage_seek.json").read_text())
    assert saved["benchmark"] == "footage_seek" and result["table"].startswith("|")
    assert {r["method"] for r in saved["runs"]} == {"proxy", "tunnel"}
    assert saved["config"]["page_cache_dropped_before_seek"] is False
    assert any(t["target"].startswith("seek-to-first-frame") for t in saved["targets"])
