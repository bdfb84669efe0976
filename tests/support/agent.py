"""Run the real POD agent for tests: ``platebridge-pod run`` with a config (see
:func:`tests.support.builders.pod_config`), and the ``platebridge-pod`` CLI.

``Agent`` writes the config under a fresh name in its directory (several agents may share
one), waits for ``/health`` unless told not to (an agent inside a network namespace is not
reachable from here), and ``close()`` leaves no agent and no ffmpeg of its HLS directory behind,
even when the test failed.
"""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from tests.support.builders import CAMERA_ID, write_pod_config
from tests.support.procs import VENV_BIN, Proc, pids_with, wait_for_http, wait_until

POD = str(VENV_BIN / "platebridge-pod")


class Agent:
    """``platebridge-pod run`` as a real process; ``prefix`` runs it through another command
    (``ip netns exec NAME``)."""

    def __init__(
        self,
        tmp: Path,
        config: Mapping[str, Any],
        env: Mapping[str, str] | None = None,
        *,
        prefix: Sequence[str] = (),
        wait: bool = True,
    ) -> None:
        self.config = dict(config)
        self.config_path = write_pod_config(tmp, self.config)
        self.tls_cert = self.config.get("tls_cert")
        scheme = "https" if self.tls_cert else "http"
        self.base = f"{scheme}://127.0.0.1:{self.config['listen_port']}"
        self.hls_dir = str(self.config["hls_dir"])
        self.proc = Proc(
            [*prefix, POD, "run", "--config", str(self.config_path)],
            log_path=tmp / f"agent-{self.config_path.stem.removeprefix('pod-')}.log",
            env=env,
        )
        if wait:
            try:
                self.wait_health()
            except BaseException:
                self.close()
                raise

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return self.proc.output()

    def fd_count(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def wait_health(self, timeout: float = 20) -> None:
        if self.tls_cert:
            wait_until(self._answers, timeout=timeout, what="agent https /health")
        else:
            wait_for_http(self.base + "/health", timeout=timeout, proc=self.proc.popen)

    def _answers(self) -> bool:
        assert self.proc.popen.poll() is None, self.proc.output()[-2000:]
        try:
            return self.get("/health").status_code == 200
        except httpx.HTTPError:
            return False

    def health(self) -> dict[str, Any]:
        data: dict[str, Any] = self.get("/health").json()
        return data

    def camera_status(self, camera_id: str = CAMERA_ID) -> dict[str, Any]:
        return next(c for c in self.health()["cameras"] if c["camera_id"] == camera_id)

    def wait_status(self, status: str, camera_id: str = CAMERA_ID, timeout: float = 30) -> Any:
        return wait_until(
            lambda: (c := self.camera_status(camera_id))["status"] == status and c,
            timeout=timeout,
            what=f"camera {camera_id} {status}",
        )

    def wait_all_active(self, timeout: float = 60) -> None:
        def all_active() -> bool:
            cams = self.health()["cameras"]
            return bool(cams) and all(c["status"] == "active" for c in cams)

        wait_until(all_active, timeout=timeout, what="all cameras active")

    def get(self, path: str, **params: str) -> httpx.Response:
        verify: ssl.SSLContext | bool = True
        if self.tls_cert:
            verify = ssl.create_default_context(cafile=self.tls_cert)
        return httpx.get(self.base + path, params=params, timeout=10, verify=verify)

    def stop(self) -> int | None:
        """SIGTERM the agent (it must stop its ffmpeg children itself); its exit code."""
        return self.proc.stop(timeout=15)

    def close(self) -> None:
        self.proc.stop(timeout=15)
        self.proc.kill_group()
        for pid in pids_with(self.hls_dir):  # never leave an ffmpeg behind, even on failure
            os.kill(pid, signal.SIGKILL)


def pod_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``platebridge-pod ARGS`` (e.g. ``check --config PATH``) and return its result."""
    return subprocess.run(
        [POD, *args], capture_output=True, text=True, timeout=timeout, check=False
    )
