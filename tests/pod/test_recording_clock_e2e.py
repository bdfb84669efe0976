"""The wall clock the index puts on recorded frames is the time they were captured: every
keyframe of a recording from the clock camera (the time burned into each picture) is decoded
and its clock compared with the index's time for it (a seek to "15:00:00" must show 15:00:00)."""

from __future__ import annotations

import dataclasses
import subprocess
import time
from pathlib import Path

import pytest

from platebridge.pod.recording.index import RecordingIndex
from tests.camera._probe import clock_code
from tests.support.agent import Agent
from tests.support.builders import CAMERA_ID, pod_config
from tests.support.camera import PROFILES, TestCamera, camera_available

pytestmark = pytest.mark.e2e

WIDTH, HEIGHT = 640, 360
cc = clock_code()


def _clock(gray: bytes) -> int | None:
    """The burned-in time (ms mod 2**40) of one gray picture, None when misread."""
    size = cc.block_size(WIDTH)
    bits = []
    for i in range(cc.BITS):
        x = size + (i % cc.PER_ROW) * size + size // 2
        y = size + (i // cc.PER_ROW) * size + size // 2
        bits.append(1 if gray[y * WIDTH + x] > 128 else 0)
    value: int | None = cc.decode(bits)
    return value


def _keyframe_clocks(path: Path) -> list[int | None]:
    """The burned-in clock of every keyframe of a recorded file, in file order."""
    decode = ["ffmpeg", "-v", "error", "-skip_frame", "nokey", "-i", str(path)]
    out = subprocess.run(
        [*decode, "-vf", "format=gray", "-vsync", "passthrough", "-f", "rawvideo", "-"],
        capture_output=True,
        timeout=60,
        check=True,
    ).stdout
    frame = WIDTH * HEIGHT
    return [_clock(out[i : i + frame]) for i in range(0, len(out) - frame + 1, frame)]


def test_index_time_is_the_burned_in_clock(tmp_path: Path) -> None:
    if not camera_available():
        pytest.fail("needs /usr/bin/python3 with GStreamer RTSP server and ffmpeg")
    profile = dataclasses.replace(
        PROFILES["clock"], width=WIDTH, height=HEIGHT, fps=15, bitrate_kbps=500, gop_s=2.0
    )
    cam = TestCamera(tmp_path, profile=profile)
    cam.start()
    config = pod_config(tmp_path, cam.url, recording_file_seconds=10)
    agent = Agent(tmp_path, config)
    try:
        agent.wait_status("active", timeout=60)
        time.sleep(14)
        assert agent.stop() == 0
    finally:
        agent.close()
        cam.stop()

    index = RecordingIndex(Path(config["recording_dir"]) / "index.sqlite3")
    files = index.files(CAMERA_ID, 0, time.time())
    index.close()
    assert files
    compared = 0
    for recorded in files:
        clocks = _keyframe_clocks(recorded.path)
        assert len(clocks) == len(recorded.keyframes), recorded.path
        for (wall, _), clock in zip(recorded.keyframes, clocks, strict=True):
            assert clock is not None, "the burned-in clock must read back from a keyframe"
            error = wall - _unwrap(clock, wall)
            assert abs(error) <= 0.25, f"index says {wall:.3f}, picture says {_unwrap(clock, wall)}"
            compared += 1
    assert compared >= 6  # ~14 s of 2 s GOPs


def _unwrap(clock_ms: int, near: float) -> float:
    """The epoch seconds a 40-bit millisecond clock stands for, near ``near``."""
    base = int(near * 1000) - int(near * 1000) % cc.MODULUS
    return (base + clock_ms) / 1000
