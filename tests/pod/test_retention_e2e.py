"""A real agent records onto a small real disk (a 12 MiB tmpfs): retention keeps it from ever
filling, the oldest footage goes first, and live keeps going throughout; when something else
fills the disk, recording pauses (``disk full`` in the log) and live still goes on, and it
resumes when there is room again."""

from __future__ import annotations

import dataclasses
import os
import re
import time
from pathlib import Path

import pytest

from platebridge.pod.recording.index import RecordingIndex
from platebridge.pod.recording.scanner import camera_files
from tests.support.agent import Agent
from tests.support.builders import CAMERA_ID, pod_config
from tests.support.camera import PROFILES, TestCamera, camera_available
from tests.support.procs import pids_with, wait_until
from tests.support.tmpfs import small_tmpfs

pytestmark = pytest.mark.e2e

MIB = 1024 * 1024
# ~1.5 Mbit/s: 12 MiB would be full in about a minute without retention
PROFILE = {"width": 640, "height": 360, "fps": 15, "bitrate_kbps": 1500, "gop_s": 1.0}


def _free(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def _newest_segment(agent: Agent) -> int:
    playlist = Path(agent.hls_dir) / CAMERA_ID / "index.m3u8"
    wait_until(playlist.exists, timeout=30, what="the HLS playlist")  # rewritten on restart
    text = playlist.read_text()
    found = re.search(r"#EXT-X-MEDIA-SEQUENCE:(\d+)", text)
    assert found, text
    return int(found.group(1)) + text.count("#EXTINF") - 1  # the newest segment's number


def _records(agent: Agent) -> bool:
    """Whether the camera's ffmpeg writes the recording now (its command line says so)."""
    rec_dir = str(agent.config["recording_dir"])
    return any(rec_dir in _cmdline(pid) for pid in pids_with(agent.hls_dir))


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_small_disk_never_fills_and_live_goes_on(tmp_path: Path) -> None:
    if not camera_available():
        pytest.fail("needs /usr/bin/python3 with GStreamer RTSP server and ffmpeg")
    profile = dataclasses.replace(PROFILES["h264-main-gop2"], pattern="smpte", motion=4, **PROFILE)
    cam = TestCamera(tmp_path, profile=profile)
    with small_tmpfs(tmp_path / "disk", 12) as disk:
        config = pod_config(
            tmp_path,
            cam.url,
            recording_dir=str(disk),
            recording_file_seconds=10,
            retention_min_free_bytes=2 * MIB,
            retention_min_free_percent=0,
        )
        cam.start()
        agent = Agent(tmp_path, config)
        try:
            agent.wait_status("active", timeout=60)
            first = wait_until(
                lambda: min(camera_files(disk / CAMERA_ID), default=None),
                timeout=30,
                what="a first file",
            )
            lowest, sequence = _free(disk), _newest_segment(agent)
            deadline = time.monotonic() + 75
            while time.monotonic() < deadline:  # bounded: 75 s of sampling
                time.sleep(0.5)
                lowest = min(lowest, _free(disk))
                assert agent.camera_status()["status"] == "active"  # live never stops
            assert _newest_segment(agent) > sequence + 30  # HLS kept advancing all along
            assert lowest > 0, "the disk filled up"
            files = camera_files(disk / CAMERA_ID)
            assert first is not None and first not in files  # the oldest went first...
            index = RecordingIndex(disk / "index.sqlite3")
            try:  # the agent indexes the growing file every 10 s: all but the newest by now
                indexed = index.files(CAMERA_ID, 0, time.time() + 60)
                assert {f.path for f in indexed} <= set(files), "rows of deleted files"
                assert set(files[:-2]) <= {f.path for f in indexed}
            finally:
                index.close()
            # it really recorded more than the disk holds: retention deleted, again and again
            freed = sum(
                int(n) for n in re.findall(r"retention deleted .* on, (\d+) bytes", agent.output())
            )
            kept = sum(f.stat().st_size for f in files)
            assert freed + kept > 12 * MIB, (freed, kept)

            # something else fills the disk: recording pauses, live goes on
            # (10.5 MiB of 12: below the 2 MiB floor even with all footage gone; retention
            # frees footage while we write, so keep taking what it frees, for at most 60 s)
            filler = disk / "filler.bin"
            with filler.open("wb") as out:
                deadline = time.monotonic() + 60
                while out.tell() < 10.5 * MIB and time.monotonic() < deadline:
                    if _free(disk) > 512 * 1024:
                        out.write(b"\0" * (256 * 1024))
                        out.flush()
                    else:
                        time.sleep(0.2)
            wait_until(
                lambda: "recording paused" in agent.output(), timeout=40, what="disk full noticed"
            )
            wait_until(lambda: not _records(agent), timeout=40, what="ffmpeg without recording")
            agent.wait_status("active", timeout=30)
            sequence = _newest_segment(agent)
            time.sleep(4)
            assert agent.camera_status()["status"] == "active"
            assert _newest_segment(agent) > sequence  # live still advancing on a full disk
            # room again: recording resumes
            filler.unlink()
            wait_until(lambda: "space is back" in agent.output(), timeout=40, what="space back")
            wait_until(lambda: _records(agent), timeout=40, what="recording again")
            agent.wait_status("active", timeout=30)
            assert agent.stop() == 0
            # after a clean stop, index and disk agree exactly, oldest to newest without holes
            files = camera_files(disk / CAMERA_ID)
            index = RecordingIndex(disk / "index.sqlite3")
            try:
                indexed = index.files(CAMERA_ID, 0, time.time() + 60)
            finally:
                index.close()
            assert [f.path for f in indexed] == files
        finally:
            agent.close()
            cam.stop()
