"""Recording from a real test camera through the real agent: files by UTC date, the index,
gaps with reasons after the camera stops and comes back, and ``kill -9`` of ffmpeg and of the
agent mid-file (the torn file is trimmed, at most ~2 s lost, index == files afterwards)."""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from pathlib import Path

import pytest

from platebridge.pod.recording.index import RecordingIndex
from platebridge.pod.recording.mp4scan import scan_file
from platebridge.pod.recording.scanner import camera_files
from tests.support.agent import Agent
from tests.support.builders import CAMERA_ID, pod_config
from tests.support.camera import PROFILES, TestCamera, camera_available
from tests.support.procs import pids_with, wait_until

pytestmark = pytest.mark.e2e

SMALL = {"width": 320, "height": 240, "fps": 15, "bitrate_kbps": 300, "gop_s": 1.0}


def _ffmpeg(agent: Agent) -> int:
    pids = wait_until(lambda: pids_with(agent.hls_dir), timeout=30, what="ffmpeg")
    return int(pids[0])


def _recording(agent: Agent) -> list[float]:
    """The ``end`` of every indexed file, read from the index as the agent keeps it."""
    index = RecordingIndex(Path(agent.config["recording_dir"]) / "index.sqlite3")
    try:
        return [f.end for f in index.files(CAMERA_ID, 0, time.time() + 60)]
    finally:
        index.close()


def test_record_gaps_and_kill_9(tmp_path: Path) -> None:
    if not camera_available():
        pytest.fail("needs /usr/bin/python3 with GStreamer RTSP server and ffmpeg")
    profile = dataclasses.replace(PROFILES["h264-aac"], **SMALL)
    cam = TestCamera(tmp_path, profile=profile)
    cam.start()
    config = pod_config(tmp_path, cam.url, recording_file_seconds=10, restart_backoff_max=2)
    rec_dir = Path(config["recording_dir"])
    agent = Agent(tmp_path, config)
    try:
        agent.wait_status("active", timeout=60)
        began = time.time()
        time.sleep(12)
        # the camera goes away for a while and comes back
        cam.stop()
        down = time.time()
        agent.wait_status("error", timeout=30)
        time.sleep(3)
        cam.start()
        up = time.time()
        agent.wait_status("active", timeout=60)
        time.sleep(6)
        # kill -9 of ffmpeg mid-file: the supervisor restarts it, the torn file is trimmed
        restarts = agent.camera_status()["restarts"]
        os.kill(_ffmpeg(agent), signal.SIGKILL)
        killed_ffmpeg = time.time()
        wait_until(lambda: agent.camera_status()["restarts"] > restarts, timeout=30, what="restart")
        agent.wait_status("active", timeout=60)
        time.sleep(6)
        # kill -9 of the agent mid-file (ffmpeg dies with it), then a new agent
        os.kill(agent.pid, signal.SIGKILL)
        killed_agent = time.time()
        agent.proc.popen.wait(10)
        wait_until(lambda: not pids_with(agent.hls_dir), timeout=10, what="ffmpeg gone")
        time.sleep(2)
        agent.close()
        agent = Agent(tmp_path, config)
        agent.wait_status("active", timeout=60)
        time.sleep(5)
        assert agent.stop() == 0
        stopped = time.time()
    finally:
        agent.close()
        cam.stop()

    # files: by camera and UTC date, every one whole and indexed exactly as it is on disk
    files = camera_files(rec_dir / CAMERA_ID)
    assert len(files) >= 5
    for path in files:
        day = time.strftime("%Y-%m-%d", time.gmtime(path.stat().st_mtime - 1))
        assert path.parent.name in (day, time.strftime("%Y-%m-%d", time.gmtime()))
    index = RecordingIndex(rec_dir / "index.sqlite3")
    rows = {f.path: f for f in index.files(CAMERA_ID, 0, time.time())}
    assert set(rows) == set(files)
    for path in files:
        scanned = scan_file(path)
        assert scanned.whole_size == scanned.size == rows[path].size, path
        assert rows[path].keyframes and rows[path].keyframes[0][1] == rows[path].init_size
        # fragments are cut at every keyframe and after at most 1 s (frag_duration): with a 1 s
        # GOP nearly all start with a keyframe, but a GOP that runs a frame over 1 s (a late
        # frame on a loaded machine) gives one that does not; the index lists exactly the ones
        # that do, and each file starts with one
        assert scanned.fragments[0].keyframe
        keyframe_offsets = [f.offset for f in scanned.fragments if f.keyframe]
        assert [offset for _, offset in rows[path].keyframes] == keyframe_offsets
        assert 2 * len(keyframe_offsets) >= len(scanned.fragments)
        assert all(f.media_duration <= 1.1 for f in scanned.fragments)

    spans = index.spans(CAMERA_ID, began - 30, stopped + 30)
    recorded = [s for s in spans if s.kind == "recording"]
    gaps = [s for s in spans if s.kind == "gap"]

    def gap_at(t: float) -> str | None:
        return next((g.reason for g in gaps if g.start - 2.5 <= t <= g.end), None)

    # the camera outage is a camera_down gap ending about when the camera was back
    assert gap_at(down) == "camera_down"
    outage = next(g for g in gaps if g.start - 2.5 <= down <= g.end)
    assert up - 1 <= outage.end <= up + 15
    # kill -9 of ffmpeg: at most ~2 s lost before it
    assert gap_at(killed_ffmpeg) == "camera_down"
    before = max(s.end for s in recorded if s.end <= killed_ffmpeg + 0.5)
    assert killed_ffmpeg - before <= 2.5
    # kill -9 of the agent: a pod_down gap, at most ~2 s lost before it
    assert gap_at(killed_agent) == "pod_down"
    before = max(s.end for s in recorded if s.end <= killed_agent + 0.5)
    assert killed_agent - before <= 2.5
    # recorded time adds up: everything but the outages, to a few seconds
    total = sum(s.end - s.start for s in recorded)
    assert total >= (stopped - began) - (up - down) - 25
    summary = index.summary(CAMERA_ID)
    assert summary.bytes == sum(p.stat().st_size for p in files)
    index.close()
