"""bench/recording --smoke (small camera, 4 s a way, a 2-day index): runs end to end and writes
its JSON; the figures are not checked (timing goals live in bench/ only)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import recording
from tests.support.camera import camera_available

pytestmark = pytest.mark.e2e


def test_recording_bench_smoke(tmp_path: Path) -> None:
    if not camera_available():
        pytest.fail("needs /usr/bin/python3 with GStreamer RTSP server and ffmpeg")
    result = recording.main(["--smoke", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "recording.json").read_text())
    assert saved["benchmark"] == "recording" and result["table"].startswith("|")
    cpu, index = saved["results"]["cpu"], saved["results"]["index"]
    assert cpu["on"]["recording_kbps"] > 0 and cpu["off"]["recording_kbps"] == 0
    assert cpu["on"]["hls_kbps"] > 0
    assert index["expired_files"] > 0 and index["files_indexed"] > index["expired_files"]
    assert len(result["targets"]) == 4
