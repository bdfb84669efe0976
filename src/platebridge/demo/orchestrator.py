"""Start the whole system on one machine: two RTSP test cameras, the portal on SQLite, a POD
agent registered through its real heartbeat and recording both cameras into
``<DEMO_DIR>/recordings`` (kept one day). Ctrl-C (SIGINT) or SIGTERM stops everything.

Children run in their own sessions, so a terminal's Ctrl-C reaches only this process, which then
stops them in order (agent first, so it stops its ffmpegs; then portal; then cameras), waits,
and SIGKILLs any process group that is still there. Settings come from the environment:

``DEMO_DIR`` (``./demo-data``), ``HOST`` (127.0.0.1), ``PORTAL_PORT`` (8080; ``PORT`` also
accepted), ``POD_PORT`` (8000), ``CAMERA_PORTS`` (``8554,8555``).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any

import httpx
import yaml

SYSTEM_PYTHON = "/usr/bin/python3"
PR_SET_PDEATHSIG = 1
# Loopback is where the demo POD lives; the defaults of the portal's POD networks stay allowed.
POD_NETWORKS = "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,100.64.0.0/10,127.0.0.0/8"
CAMERAS = (
    ("gate-camera-1", "Main Gate Camera", "main entrance", "smpte"),
    ("exit-camera", "Exit Lane Camera", "exit lane", "ball"),
)


class DemoError(Exception):
    """A one-line reason the demo cannot run."""


@dataclass(frozen=True)
class DemoConfig:
    data_dir: Path
    repo: Path
    host: str = "127.0.0.1"
    portal_port: int = 8080
    pod_port: int = 8000
    camera_ports: tuple[int, ...] = (8554, 8555)
    bin_dir: Path = field(default_factory=lambda: Path(sys.executable).parent)

    @property
    def portal_url(self) -> str:
        return f"http://{self.host}:{self.portal_port}"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> DemoConfig:
        def port(name: str, default: str) -> int:
            value = env.get(name, default)
            if not value.isdigit() or not 1 <= int(value) <= 65535:
                raise DemoError(f"{name} must be a TCP port number")
            return int(value)

        cameras = env.get("CAMERA_PORTS", "8554,8555").split(",")
        if len(cameras) != 2 or not all(c.strip().isdigit() for c in cameras):
            raise DemoError("CAMERA_PORTS must be two port numbers, e.g. 8554,8555")
        return cls(
            data_dir=Path(env.get("DEMO_DIR", "demo-data")).resolve(),
            repo=Path.cwd(),
            host=env.get("HOST", "127.0.0.1"),
            portal_port=port("PORTAL_PORT", env.get("PORT", "8080")),
            pod_port=port("POD_PORT", "8000"),
            camera_ports=tuple(int(c) for c in cameras),
        )


def _die_with_parent() -> None:
    """In the child before exec: the kernel sends SIGTERM if the demo itself dies (even by
    SIGKILL), so no child outlives it; the POD agent then stops its own ffmpegs."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Child:
    """A child process in its own session with its output in ``logs/<name>.log``."""

    def __init__(self, name: str, argv: list[str], log_dir: Path, env: Mapping[str, str]) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log: IO[bytes] = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **env},
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 15) -> str:
        self._log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(f"    {line}" for line in text)

    def stop(self, timeout: float = 10.0) -> None:
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout)
        # Whatever is left in its process group (it should be nothing) is killed.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(5)
        self._log.close()


class Stop(Exception):
    """Raised by the signal handler: stop everything now."""


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    raise Stop(signal.Signals(signum).name)


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def wait_for(what: str, check: Any, children: list[Child], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in children:
            if not child.alive():
                raise DemoError(f"{child.name} exited while waiting for {what}:\n{child.tail()}")
        value = check()
        if value:
            return value
        time.sleep(0.3)
    raise DemoError(f"timed out waiting for {what}")


class Demo:
    def __init__(self, config: DemoConfig) -> None:
        self.config = config
        self.children: list[Child] = []
        self.logs = config.data_dir / "logs"
        self.recordings = config.data_dir / "recordings"

    # --- steps -----------------------------------------------------------------------------

    def preflight(self) -> None:
        c = self.config
        tool = c.repo / "tools" / "rtsp_test_camera.py"
        if not tool.is_file():
            raise DemoError(f"{tool} not found: run the demo from the repository root")
        if not Path(SYSTEM_PYTHON).exists():
            raise DemoError(f"{SYSTEM_PYTHON} (with GStreamer) is needed for the test cameras")
        for name, port in [
            ("PORTAL_PORT", c.portal_port),
            ("POD_PORT", c.pod_port),
            *(("CAMERA_PORTS", p) for p in c.camera_ports),
        ]:
            if not port_free(c.host if name == "PORTAL_PORT" else "127.0.0.1", port):
                raise DemoError(f"port {port} is in use; choose another with {name}=…")
        self.logs.mkdir(parents=True, exist_ok=True)

    def portal_env(self) -> dict[str, str]:
        return {
            "PLATEBRIDGE_DATABASE_URL": f"sqlite:///{self.config.data_dir / 'portal.db'}",
            "PLATEBRIDGE_POD_NETWORKS": POD_NETWORKS,
        }

    def seed(self) -> dict[str, Any]:
        """The demo company, admin and POD (idempotent: a second run reuses them, with a fresh
        admin password and POD key)."""
        argv = [str(self.config.bin_dir / "platebridge-portal"), "demo-seed", "--json"]
        argv += ["--portal-url", self.config.portal_url]
        result = subprocess.run(
            argv,
            env={**os.environ, **self.portal_env()},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            raise DemoError(f"demo-seed failed: {result.stderr.strip()}")
        seeded: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
        return seeded

    def start_cameras(self) -> None:
        tool = str(self.config.repo / "tools" / "rtsp_test_camera.py")
        for (camera_id, _name, _pos, pattern), port in zip(
            CAMERAS, self.config.camera_ports, strict=True
        ):
            argv = [SYSTEM_PYTHON, tool, "--host", "127.0.0.1", "--port", str(port)]
            argv += ["--pattern", pattern, "--width", "640", "--height", "360", "--fps", "15"]
            child = Child(f"camera-{camera_id}", argv, self.logs, {})
            self.children.append(child)
        for child in self.children:
            wait_for(
                f"{child.name}", lambda c=child: "READY" in c.log_path.read_text(), [child], 30
            )

    def start_portal(self) -> None:
        c = self.config
        argv = [str(c.bin_dir / "platebridge-portal"), "serve", "--host", c.host]
        argv += ["--port", str(c.portal_port)]
        portal = Child("portal", argv, self.logs, self.portal_env())
        self.children.append(portal)

        def healthy() -> bool:
            try:
                return httpx.get(f"{c.portal_url}/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for("the portal", healthy, [portal], 60)

    def write_pod_config(self, seeded: dict[str, Any]) -> Path:
        c = self.config
        config = {
            "pod_id": seeded["pod_id"],
            "portal_url": c.portal_url,
            "api_key": seeded["api_key"],
            "stream_token_secret": seeded["stream_token_secret"],
            "cameras": [
                {
                    "camera_id": camera_id,
                    "name": name,
                    "rtsp_url": f"rtsp://127.0.0.1:{port}/stream",
                    "position": position,
                }
                for (camera_id, name, position, _), port in zip(
                    CAMERAS, c.camera_ports, strict=True
                )
            ],
            "listen_host": "127.0.0.1",
            "listen_port": c.pod_port,
            "advertise_address": "127.0.0.1",
            "heartbeat_interval": 15,
            "hls_dir": str(c.data_dir / "hls"),
            # Footage stays in the demo's directory; a day of it, and retention keeps the
            # default floor of free space (2 GiB / 10 %), so a laptop never fills.
            "recording_dir": str(self.recordings),
            "retention_days": 1,
            "cors_origins": [c.portal_url],
        }
        path = c.data_dir / "pod.yaml"
        path.touch(mode=0o600, exist_ok=True)
        path.chmod(0o600)  # holds the POD's API key and stream secret
        path.write_text("# Written by the demo on every run.\n" + yaml.safe_dump(config))
        return path

    def start_pod(self, config_path: Path, seeded: dict[str, Any]) -> None:
        c = self.config
        argv = [str(c.bin_dir / "platebridge-pod"), "run", "--config", str(config_path)]
        pod = Child("pod", argv, self.logs, {})
        self.children.append(pod)
        login = {"email": seeded["email"], "password": seeded["password"]}

        def registered() -> bool:
            try:
                r = httpx.post(f"{c.portal_url}/api/auth/login", json=login, timeout=10)
                token = r.json()["access_token"]
                cams = httpx.get(
                    f"{c.portal_url}/api/cameras",
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=5,
                ).json()["cameras"]
            except (httpx.HTTPError, KeyError, ValueError):
                return False
            return sum(1 for cam in cams if cam.get("streamable")) >= len(CAMERAS)

        wait_for("the POD's cameras in the portal", registered, self.children, 90)

    def banner(self, seeded: dict[str, Any]) -> str:
        c = self.config
        return "\n".join(
            (
                "",
                "PlateBridge demo is running.",
                f"  Open:      {c.portal_url}/",
                f"  E-mail:    {seeded['email']}",
                f"  Password:  {seeded['password']}",
                f"  Footage:   open a camera → Footage (the timeline; recorded since the start,"
                f" kept 1 day in {self.recordings})",
                f"  Alerts:    {c.portal_url}/alerts (incidents; Alerts → Settings adds a webhook"
                " or e-mail; a camera in error for 5 min or a POD silent for 10 min alerts)",
                f"  POD agent: http://127.0.0.1:{c.pod_port}/health   logs: {self.logs}",
                "Press Ctrl-C to stop everything.",
                "",
            )
        )

    # --- lifecycle ---------------------------------------------------------------------------

    def run(self) -> int:
        self.preflight()
        print("demo: seeding the demo company (SQLite)…", flush=True)
        seeded = self.seed()
        print("demo: starting two RTSP test cameras…", flush=True)
        self.start_cameras()
        print(f"demo: starting the portal on {self.config.portal_url}…", flush=True)
        self.start_portal()
        print("demo: starting the POD agent and waiting for its heartbeat…", flush=True)
        self.start_pod(self.write_pod_config(seeded), seeded)
        print(self.banner(seeded), flush=True)
        while True:
            for child in self.children:
                if not child.alive():
                    raise DemoError(f"{child.name} stopped unexpectedly:\n{child.tail()}")
            time.sleep(0.5)

    def stop_all(self) -> None:
        for child in reversed(self.children):  # POD agent, portal, cameras
            child.stop()
        self.children.clear()


def main() -> int:
    try:
        config = DemoConfig.from_env(os.environ)
    except DemoError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 2
    demo = Demo(config)
    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    code = 0
    try:
        demo.run()
    except Stop as stop:
        print(f"\ndemo: {stop} received, stopping…", flush=True)
    except DemoError as exc:
        print(f"demo: {exc}", file=sys.stderr, flush=True)
        code = 1
    finally:
        # A second Ctrl-C must not interrupt the clean-up.
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)
        demo.stop_all()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("demo: stopped.", flush=True)
    return code
