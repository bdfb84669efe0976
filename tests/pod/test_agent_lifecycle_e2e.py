"""The agent's structured concurrency, seen from outside (real ``platebridge-pod run``, real
camera and ffmpeg): SIGTERM stops the parts in reverse start order and exits 0; a part that
fails (the HTTP server cannot load its TLS key) stops every other part cleanly and exits 1.
Either way no ffmpeg of the agent's HLS directory is left and the camera's files are gone."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.support.agent import Agent
from tests.support.builders import pod_config
from tests.support.camera import TestCamera
from tests.support.procs import pids_with

pytestmark = pytest.mark.e2e

STOP_LINES = ["stopping tunnel", "stopping heartbeat", "stopping HTTP server", "stopping cameras"]


def _positions(output: str, lines: list[str]) -> list[int]:
    found = [output.find(line) for line in lines]
    assert -1 not in found, f"missing one of {lines}:\n{output[-3000:]}"
    return found


def test_sigterm_stops_the_parts_in_reverse_order(rtsp_camera: TestCamera, tmp_path: Path) -> None:
    # tunnel: true with no portal listening: the tunnel task is running (retrying) at SIGTERM.
    config = pod_config(tmp_path, rtsp_camera.url, tunnel=True, tunnel_backoff_max=1)
    agent = Agent(tmp_path, config)
    try:
        agent.wait_status("active")
        assert agent.health()["tunnel"]["state"] in ("connecting", "disconnected")
        assert pids_with(agent.hls_dir), "ffmpeg should be running"
        agent.proc.signal(signal.SIGTERM)
        assert agent.proc.popen.wait(30) == 0
        output = agent.output()
        positions = _positions(output, ["shutting down", *STOP_LINES])
        assert positions == sorted(positions), output[-3000:]
        assert "Traceback" not in output and " ERROR " not in output, output[-3000:]
        assert pids_with(agent.hls_dir) == []
        assert not (Path(agent.hls_dir) / "gate-camera-1").exists()
    finally:
        agent.close()


def test_a_failing_part_stops_the_agent_cleanly(rtsp_camera: TestCamera, tmp_path: Path) -> None:
    cert, key = tmp_path / "pod.crt", tmp_path / "pod.key"
    cert.write_text("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
    key.write_text("not a key\n")
    config = pod_config(tmp_path, rtsp_camera.url, tls_cert=str(cert), tls_key=str(key))
    agent = Agent(tmp_path, config, wait=False)
    try:
        assert agent.proc.popen.wait(60) == 1
        output = agent.output()
        assert "HTTP server failed" in output, output[-3000:]
        # every other part was still stopped, newest first, and nothing crashed on the way out
        positions = _positions(output, STOP_LINES[1:])
        assert positions == sorted(positions), output[-3000:]
        assert "Traceback" not in output, output[-3000:]
        assert pids_with(agent.hls_dir) == []
        assert not (Path(agent.hls_dir) / "gate-camera-1").exists()
    finally:
        agent.close()
