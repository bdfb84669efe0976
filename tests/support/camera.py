"""A real RTSP test camera (tools/rtsp_test_camera.py under Debian's python3 with GStreamer).

``TestCamera`` starts on a free loopback port, can be stopped and started again on the same
port (outage tests), and always cleans up its process. ``rtsp_camera`` is a ready fixture.

``PROFILES`` are cameras like the ones at real gates (../shared/cameras.md): codec and profile,
keyframe interval, audio, digest auth, a substream. They are 640x360 so tests stay cheap on two
cores; ``profile.at_1080p()`` is the benchmark's full-size variant (1920x1080, 25 fps, 4 Mbit/s).
"""

from __future__ import annotations

import dataclasses
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.procs import REPO, Proc, free_port

SYSTEM_PYTHON = "/usr/bin/python3"
CAMERA_SCRIPT = REPO / "tools" / "rtsp_test_camera.py"
SUB_PATH = "/sub"


def camera_available() -> bool:
    return Path(SYSTEM_PYTHON).exists() and shutil.which("ffmpeg") is not None


@dataclass(frozen=True)
class CameraProfile:
    """What the camera sends (tools/rtsp_test_camera.py's options)."""

    codec: str = "h264"  # h264 | h265
    h264_profile: str = "main"  # baseline | main | high (H.264 only)
    width: int = 640
    height: int = 360
    fps: int = 25
    bitrate_kbps: int = 600
    gop_s: float = 2.0  # keyframe interval in seconds, no scene-cut keyframes
    audio: str = "none"  # none | pcma | pcmu | aac
    auth: str = "basic"  # basic | digest (used when the camera has a user)
    clock: bool = False  # the wall clock burned into each picture (tools/clock_code.py)
    pattern: str = "ball"
    motion: int = 0  # scroll the pattern N px a frame: "smpte" + 4 ≈ 4 Mbit/s at 1080p
    sub: tuple[int, int, int] | None = None  # substream at /sub: (width, height, kbit/s)

    def at_1080p(self, bitrate_kbps: int = 4000) -> CameraProfile:
        return dataclasses.replace(self, width=1920, height=1080, fps=25, bitrate_kbps=bitrate_kbps)

    def args(self) -> list[str]:
        argv = ["--codec", self.codec, "--gop", f"{self.gop_s:g}", "--audio", self.audio]
        if self.codec == "h264":
            argv += ["--profile", self.h264_profile]
        argv += ["--auth", self.auth, "--motion", str(self.motion)]
        if self.sub is not None:
            argv += ["--sub-path", SUB_PATH, "--sub-width", str(self.sub[0])]
            argv += ["--sub-height", str(self.sub[1]), "--sub-bitrate", str(self.sub[2])]
        return argv + (["--clock"] if self.clock else [])


PROFILES: dict[str, CameraProfile] = {
    "h264-main-gop2": CameraProfile(),
    "h264-high-gop1": CameraProfile(h264_profile="high", gop_s=1.0),
    "h264-high-gop4": CameraProfile(h264_profile="high", gop_s=4.0),
    "h264-high-gop10": CameraProfile(h264_profile="high", gop_s=10.0),
    "h265": CameraProfile(codec="h265", gop_s=2.0),
    "h264-g711a": CameraProfile(audio="pcma"),
    "h264-g711u": CameraProfile(audio="pcmu"),
    "h264-aac": CameraProfile(audio="aac"),
    "digest": CameraProfile(auth="digest"),
    "h264-main-sub": CameraProfile(sub=(320, 180, 200)),
    "clock": CameraProfile(h264_profile="high", clock=True),
}


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
        profile: CameraProfile | None = None,
        dropout: tuple[float, float] | None = None,
    ) -> None:
        """Without ``profile``: today's small 1 s-GOP baseline H.264 pattern at 300 kbit/s.
        With it, the profile's picture size, fps, bitrate and pattern win. ``dropout``:
        (every_s, for_s) — the camera disconnects everyone and answers 404 for for_s."""
        self.port = port or free_port()
        self.log_dir = log_dir
        self.profile, self.dropout = profile, dropout
        if profile is not None:
            pattern, width, height, fps = (
                profile.pattern,
                profile.width,
                profile.height,
                profile.fps,
            )
        self.pattern, self.width, self.height, self.fps = pattern, width, height, fps
        self.user, self.password = user, password
        self.proc: Proc | None = None
        self._starts = 0
        #: Times the camera process died on its own and was started again (see _watch).
        self.crashes = 0
        self._lock = threading.RLock()
        self._wanted = False
        self._watchdog: threading.Thread | None = None

    @property
    def url(self) -> str:
        cred = f"{self.user}:{self.password}@" if self.user else ""
        return f"rtsp://{cred}127.0.0.1:{self.port}/stream"

    @property
    def sub_url(self) -> str | None:
        """The substream's URL when the profile has one (one RTSP session of its own)."""
        if self.profile is None or self.profile.sub is None:
            return None
        return self.url.removesuffix("/stream") + SUB_PATH

    def argv(self) -> list[str]:
        argv = [SYSTEM_PYTHON, str(CAMERA_SCRIPT), "--port", str(self.port)]
        argv += ["--pattern", self.pattern, "--width", str(self.width)]
        bitrate = self.profile.bitrate_kbps if self.profile else 300
        argv += ["--height", str(self.height), "--fps", str(self.fps), "--bitrate", str(bitrate)]
        if self.profile is not None:
            argv += self.profile.args()
        if self.user:
            argv += ["--user", self.user, "--password", str(self.password)]
        if self.dropout is not None:
            argv += ["--dropout-every", f"{self.dropout[0]:g}"]
            argv += ["--dropout-for", f"{self.dropout[1]:g}"]
        return argv

    def toggle_dropout(self) -> None:
        """Start or end a drop-out by hand (SIGUSR1): the process keeps running."""
        assert self.proc is not None, "camera not running"
        self.proc.signal(signal.SIGUSR1)

    def start(self, timeout: float = 15.0) -> None:
        """Start (again, on the same port) and wait for the READY line."""
        with self._lock:
            assert self.proc is None, "camera already running"
            self._spawn(timeout)
            self._wanted = True
        if self._watchdog is None or not self._watchdog.is_alive():
            self._watchdog = threading.Thread(target=self._watch, daemon=True)
            self._watchdog.start()

    def _spawn(self, timeout: float) -> None:
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
            self._kill()
            if time.monotonic() >= deadline:
                raise RuntimeError(f"test camera did not start:\n{output}")
            time.sleep(0.3)

    def _watch(self) -> None:
        """GStreamer's RTSP server sometimes aborts (``gst_rtsp_media_get_rates: assertion
        failed``) when several clients set up the shared media at once (docs/security.md): a
        real camera reboots and comes back, so the test camera does too, and counts it."""
        while True:
            time.sleep(0.25)
            with self._lock:
                if not self._wanted:
                    return
                if self.proc is None or self.proc.popen.poll() is None:
                    continue
                self.crashes += 1
                self._kill()
                try:
                    self._spawn(15.0)
                except RuntimeError:
                    self._wanted = False
                    return

    def _kill(self) -> None:
        if self.proc is not None:
            self.proc.stop(timeout=5)
            self.proc.kill_group()
            self.proc = None

    def stop(self) -> None:
        with self._lock:
            self._wanted = False
            self._kill()

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
