"""Helpers for POD tests: config files, a running agent process, stream tokens, /proc scans."""

from __future__ import annotations

import os
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from platebridge.core.tokens import StreamClaims, sign_stream_token
from tests.support.camera import rtsp_camera  # noqa: F401  (fixture re-export)
from tests.support.procs import VENV_BIN, Proc, free_port, wait_for_http, wait_until

SECRET = "pod-stream-secret-for-tests-0123456789"
POD_ID = "main-gate-pod"
API_KEY = "pbk_test_0123456789abcdef"


def base_config(tmp: Path, rtsp_url: str, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "pod_id": POD_ID,
        "portal_url": f"http://127.0.0.1:{free_port()}",  # nothing listens there
        "api_key": API_KEY,
        "stream_token_secret": SECRET,
        "camera_id": "gate-camera-1",
        "camera_name": "Main Gate Camera",
        "camera_rtsp_url": rtsp_url,
        "camera_position": "main entrance",
        "listen_host": "127.0.0.1",
        "listen_port": free_port(),
        "advertise_address": "127.0.0.1",
        "heartbeat_interval": 1,
        "hls_dir": str(tmp / "hls"),
        "hls_segment_seconds": 1,
        "rtsp_timeout": 3,
    }
    config.update(overrides)
    return config


def token(
    camera_id: str = "gate-camera-1",
    *,
    pod_id: str = POD_ID,
    exp_in: int = 600,
    secret: str = SECRET,
) -> str:
    claims = StreamClaims("user-1", pod_id, camera_id, int(time.time()) + exp_in)
    return sign_stream_token(claims, secret)


def pids_with(fragment: str) -> list[int]:
    """Live processes whose command line contains ``fragment`` (e.g. a test's unique hls dir)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().split(") ", 1)[1][0]
        except OSError:
            continue
        if fragment in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


class Agent:
    """``platebridge-pod run`` as a real process on a free loopback port."""

    def __init__(self, tmp: Path, config: dict[str, Any], env: dict[str, str] | None = None):
        self.config = config
        self.config_path = tmp / "pod.yaml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.tls_cert = config.get("tls_cert")
        scheme = "https" if self.tls_cert else "http"
        self.base = f"{scheme}://127.0.0.1:{config['listen_port']}"
        self.hls_dir = str(config["hls_dir"])
        self.proc = Proc(
            [str(VENV_BIN / "platebridge-pod"), "run", "--config", str(self.config_path)],
            log_path=tmp / "agent.log",
            env=env,
        )
        if self.tls_cert:
            wait_until(self._answers, timeout=20, what="agent https /health")
        else:
            wait_for_http(self.base + "/health", timeout=20, proc=self.proc.popen)

    def _answers(self) -> bool:
        assert self.proc.popen.poll() is None, self.proc.output()[-2000:]
        try:
            return self.get("/health").status_code == 200
        except httpx.HTTPError:
            return False

    def health(self) -> dict[str, Any]:
        data: dict[str, Any] = self.get("/health").json()
        return data

    def camera_status(self, camera_id: str = "gate-camera-1") -> dict[str, Any]:
        return next(c for c in self.health()["cameras"] if c["camera_id"] == camera_id)

    def wait_status(self, status: str, camera_id: str = "gate-camera-1", timeout: float = 30):
        return wait_until(
            lambda: (c := self.camera_status(camera_id))["status"] == status and c,
            timeout=timeout,
            what=f"camera {camera_id} {status}",
        )

    def get(self, path: str, **params: str) -> httpx.Response:
        verify: ssl.SSLContext | bool = True
        if self.tls_cert:
            verify = ssl.create_default_context(cafile=self.tls_cert)
        return httpx.get(self.base + path, params=params, timeout=10, verify=verify)

    def stop(self) -> int | None:
        return self.proc.stop(timeout=15)

    def close(self) -> None:
        self.proc.stop(timeout=15)
        self.proc.kill_group()
        for pid in pids_with(self.hls_dir):  # never leave an ffmpeg behind, even on failure
            os.kill(pid, 9)


@pytest.fixture
def agent_factory(tmp_path: Path) -> Iterator[Any]:
    agents: list[Agent] = []

    def start(config: dict[str, Any], env: dict[str, str] | None = None) -> Agent:
        agent = Agent(tmp_path, config, env)
        agents.append(agent)
        return agent

    yield start
    for agent in agents:
        agent.close()
