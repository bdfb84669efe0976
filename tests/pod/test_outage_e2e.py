"""Outages: camera down and back on the same port, portal down, agent killed hard."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.support.builders import pod_config, stream_token
from tests.support.camera import TestCamera, camera_available
from tests.support.procs import pids_with, wait_until

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not camera_available(), reason="needs GStreamer RTSP server and ffmpeg"),
]

CAM_PASSWORD = "Cam-Pa55word-xyz"


def _hls_ok(agent: Any) -> bool:
    return bool(agent.get("/stream", token=stream_token()).status_code == 200)


def test_camera_outage_recovers_and_portal_outage_never_stops_streaming(
    tmp_path: Path, agent_factory: Any
) -> None:
    with TestCamera(tmp_path, user="admin", password=CAM_PASSWORD) as cam:
        url = cam.url.replace(CAM_PASSWORD, "${CAM_PASSWORD}")
        agent = agent_factory(pod_config(tmp_path, url), env={"CAM_PASSWORD": CAM_PASSWORD})
        agent.wait_status("active")

        # portal down: the agent keeps serving and keeps retrying the heartbeat ("active" is the
        # live output; the HLS playlist follows within a segment)
        wait_until(lambda: _hls_ok(agent), timeout=20, what="HLS served")
        wait_until(
            lambda: agent.proc.output().count("portal unreachable") >= 3,
            what="three failed heartbeat attempts",
        )

        # camera down: error with a redacted reason, no stale video
        cam.stop()
        failed = agent.wait_status("error")
        assert failed["error"]
        assert CAM_PASSWORD not in failed["error"]
        r = agent.get("/stream", token=stream_token())
        assert (r.status_code, r.json()["error"]) == (503, "not_ready")

        # camera back on the same port: active again, same agent process
        cam.start()
        agent.wait_status("active", timeout=45)
        assert agent.proc.popen.poll() is None
        wait_until(lambda: _hls_ok(agent), timeout=20, what="HLS served again")

    assert CAM_PASSWORD not in agent.proc.output()
    assert agent.stop() == 0
    assert pids_with(agent.hls_dir) == []


def test_sigkill_of_agent_takes_ffmpeg_down(
    rtsp_camera: TestCamera, tmp_path: Path, agent_factory: Any
) -> None:
    agent = agent_factory(pod_config(tmp_path, rtsp_camera.url))
    agent.wait_status("active")
    assert pids_with(agent.hls_dir)
    agent.proc.signal(signal.SIGKILL)
    agent.proc.popen.wait(10)
    wait_until(lambda: not pids_with(agent.hls_dir), timeout=10, what="ffmpeg gone")


def test_sigint_stops_cleanly(rtsp_camera: TestCamera, tmp_path: Path, agent_factory: Any) -> None:
    agent = agent_factory(pod_config(tmp_path, rtsp_camera.url))
    agent.wait_status("active")
    agent.proc.signal(signal.SIGINT)
    assert agent.proc.popen.wait(20) == 0
    assert pids_with(agent.hls_dir) == []


def test_stalled_ffmpeg_is_detected_and_replaced(
    rtsp_camera: TestCamera, tmp_path: Path, agent_factory: Any
) -> None:
    """Freeze ffmpeg (SIGSTOP): alive but no new segments → the supervisor replaces it."""
    agent = agent_factory(pod_config(tmp_path, rtsp_camera.url))
    agent.wait_status("active")
    (frozen,) = pids_with(agent.hls_dir)
    os.kill(frozen, signal.SIGSTOP)
    failed = agent.wait_status("error", timeout=20)
    assert failed["error"].startswith("stalled")
    agent.wait_status("active", timeout=30)
    assert frozen not in pids_with(agent.hls_dir)
