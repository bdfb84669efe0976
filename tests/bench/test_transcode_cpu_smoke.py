"""bench/transcode_cpu --smoke (360p, 3 s a way): runs end to end and writes its JSON; the
figures are not checked (timing goals live in bench/ only)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import transcode_cpu
from tests.support.camera import camera_available

pytestmark = pytest.mark.e2e


def test_transcode_cpu_smoke(tmp_path: Path) -> None:
    if not camera_available():
        pytest.fail("needs /usr/bin/python3 with GStreamer RTSP server and ffmpeg")
    result = transcode_cpu.main(["--smoke", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "transcode_cpu.json").read_text())
    assert saved["benchmark"] == "transcode_cpu" and result["table"].startswith("|")
    ways = set(saved["results"]["360p"])
    assert {"copy", "h264", "h264-twice"} <= ways
    assert {t["name"] for t in result["targets"]} >= {"360p: h264 frames out / copy's"}
    assert saved["results"]["360p"]["h264"]["fps"] > 0  # the transcoder delivered frames
