"""A real RTSP test camera (tools/rtsp_test_camera.py under Debian's python3 with GStreamer).

``TestCamera`` starts on a free loopback port, can be stopped and started again on the same
port (outage tests), and always cleans up its process. ``rtsp_camera`` is a ready fixture.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.procs import REPO, Proc, free_port

SYSTEM_PYTHON = "/usr/bin/python3"
CAMERA_SCRIPT = REPO / "tools" / "rtsp_test_camera.py"


def camera_available() -> bool:
    return Path(SYSTEM_PYTHON).exists() and shutil.which("ffmpeg") is not None


class TestCamera:
    __test__ = False  # not a pytest test class

    def __init__(
        self,
        log_dir: Path,
        *,
        pattern: str = "ball",
        width: int = 320,
        height: int = 240,
        fps: int = 15,
        user: str | None = None,
        password: str | None = None,
        port: int | None = None,
    ) -> None:
        self.port = port or free_port()
        self.log_dir = log_dir
        self.pattern, self.width, self.height, self.fps = pattern, width, height, fps
        self.user, self.password = user, password
        self.proc: Proc | None = None
        self._starts = 0

    @property
    def url(self) -> str:
        cred = f"{self.user}:{self.password}@" if self.user else ""
        return f"rtsp://{cred}127.0.0.1:{self.port}/stream"

    def argv(self) -> list[str]:
        argv = [SYSTEM_PYTHON, str(CAMERA_SCRIPT), "--port", str(self.port)]
        argv += ["--pattern", self.pattern, "--width", str(self.width)]
        argv += ["--height", str(self.height), "--fps", str(self.fps), "--bitrate", "300"]
        if self.user:
            argv += ["--user", self.user, "--password", str(self.password)]
        return argv

    def start(self, timeout: float = 15.0) -> None:
        """Start (again, on the same port) and wait for the READY line."""
        assert self.proc is None, "camera already running"
        self._starts += 1
        log = self.log_dir / f"camera-{self.port}-{self._starts}.log"
        deadline = time.monotonic() + timeout
        while True:  # the port may linger briefly after a restart
            self.proc = Proc(self.argv(), log_path=log)
            while time.monotonic() < deadline:
                if "READY" in self.proc.output():
                    return
                if self.proc.popen.poll() is not None:
                    break
                time.sleep(0.05)
            output = self.proc.output()
            self.stop()
            if time.monotonic() >= deadline:
                raise RuntimeError(f"test camera did not start:\n{output}")
            time.sleep(0.3)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop(timeout=5)
            self.proc.kill_group()
            self.proc = None

    def __enter__(self) -> TestCamera:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture(scope="module")
def rtsp_camera(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestCamera]:
    if not camera_available():
        pytest.skip("needs /usr/bin/python3 with GStreamer RTSP server and ffmpeg")
    with TestCamera(tmp_path_factory.mktemp("camera")) as cam:
        yield cam
