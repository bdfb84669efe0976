"""One supervised ffmpeg per camera: restart with back-off, stall detection, redacted stderr.

Status model: ``starting`` until the first segment of the agent's life, ``active`` while new
segments keep arriving, ``error`` (with a redacted reason) from the first failure until a
later run produces a segment again. Retries do not flip the status back to ``starting``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from platebridge.core.redact import redact_text
from platebridge.pod.backoff import Backoff
from platebridge.pod.config import CameraConfig, PodConfig
from platebridge.pod.ffmpeg import PLAYLIST_NAME, camera_dir, hls_argv
from platebridge.pod.stderr_tail import StderrTail

log = logging.getLogger("platebridge.pod.camera")

CameraStatus = Literal["starting", "active", "error"]
POLL_SECONDS = 0.25
#: A run that stayed active this long resets the restart back-off.
HEALTHY_UPTIME = 30.0
TERM_GRACE = 5.0
MAX_REASON = 300

_PR_SET_PDEATHSIG = 1
try:
    _LIBC: ctypes.CDLL | None = ctypes.CDLL("libc.so.6", use_errno=True)
except OSError:  # not glibc Linux: rely on process-group clean-up only
    _LIBC = None


def die_with_parent() -> None:
    """``preexec_fn``: the kernel SIGKILLs the child if the agent dies without cleaning up."""
    parent = os.getppid()
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # parent already gone between fork and prctl
        os._exit(1)


@dataclass
class CameraState:
    camera_id: str
    name: str
    status: CameraStatus = "starting"
    error: str | None = None
    restarts: int = 0


class CameraSupervisor:
    def __init__(
        self,
        config: PodConfig,
        camera: CameraConfig,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        self.camera = camera
        self.dir = camera_dir(config, camera.camera_id)
        self.state = CameraState(camera.camera_id, camera.name)
        self.tail = StderrTail(config.secrets)
        self.backoff = Backoff(1.0, 2.0, config.restart_backoff_max)
        seg = config.hls_segment_seconds
        self.stall_timeout = max(4.0 * seg, 4.0)
        self.start_timeout = config.rtsp_timeout * 2 + 10.0
        self._on_change = on_change
        self._stop = asyncio.Event()
        self._proc: asyncio.subprocess.Process | None = None

    @property
    def playlist(self) -> Path:
        return self.dir / PLAYLIST_NAME

    def _set(self, status: CameraStatus, error: str | None = None) -> None:
        changed = (status, error) != (self.state.status, self.state.error)
        self.state.status, self.state.error = status, error
        if changed:
            level = logging.WARNING if status == "error" else logging.INFO
            log.log(
                level, "camera %s: %s%s", self.camera.camera_id, status, f" ({error})" * bool(error)
            )
            if self._on_change is not None:
                self._on_change()

    def _clean_dir(self) -> None:
        """Drop every file of a previous run so a dead stream is never served as live."""
        if self.dir.exists():
            shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True, exist_ok=True)

    async def run(self) -> None:
        try:
            while not self._stop.is_set():
                reason, active_for = await self._run_once()
                if self._stop.is_set():
                    break
                self.state.restarts += 1
                if active_for >= HEALTHY_UPTIME:
                    self.backoff.reset()
                self._set("error", reason)
                delay = self.backoff.next()
                log.info("camera %s: restarting ffmpeg in %.0f s", self.camera.camera_id, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    async def _run_once(self) -> tuple[str, float]:
        """Run ffmpeg until it exits, stalls or we stop; return (reason, seconds active)."""
        self._clean_dir()
        self.tail.clear()
        try:
            proc = await asyncio.create_subprocess_exec(
                *hls_argv(self.config, self.camera),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        except OSError as exc:
            return f"cannot start ffmpeg: {exc.strerror or exc}", 0.0
        self._proc = proc
        reader = asyncio.create_task(self._read_stderr(proc))
        try:
            reason, active_for = await self._watch(proc)
        finally:
            await self._terminate(proc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(reader, 2.0)
            reader.cancel()
            self._proc = None
            # The stream is gone: remove the playlist so /stream answers 503, not stale video.
            shutil.rmtree(self.dir, ignore_errors=True)
        return reason, active_for

    async def _read_stderr(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        while line := await proc.stderr.readline():
            text = self.tail.add(line)
            if text:
                log.debug("camera %s ffmpeg: %s", self.camera.camera_id, text)

    def _mtime(self) -> int | None:
        try:
            return self.playlist.stat().st_mtime_ns
        except OSError:
            return None

    async def _watch(self, proc: asyncio.subprocess.Process) -> tuple[str, float]:
        started = time.monotonic()
        last_mtime: int | None = None
        last_progress = started
        active_since: float | None = None
        while True:
            try:
                code = await asyncio.wait_for(proc.wait(), POLL_SECONDS)
            except TimeoutError:
                code = None
            now = time.monotonic()
            active_for = 0.0 if active_since is None else now - active_since
            if self._stop.is_set():
                return "stopped", active_for
            if code is not None:
                await asyncio.sleep(0.05)  # let the stderr reader catch the last lines
                return self._exit_reason(code), active_for
            mtime = self._mtime()
            if mtime is not None and mtime != last_mtime:
                last_mtime, last_progress = mtime, now
                if active_since is None:
                    active_since = now
                    self._set("active")
            elif active_since is not None and now - last_progress > self.stall_timeout:
                return f"stalled: no new segment for {self.stall_timeout:.0f} s", active_for
            elif active_since is None and now - started > self.start_timeout:
                return f"no video within {self.start_timeout:.0f} s", 0.0

    def _exit_reason(self, code: int) -> str:
        last = self.tail.last()
        reason = f"ffmpeg exited with code {code}"
        if last:
            reason += f": {last}"
        return redact_text(reason, self.config.secrets)[:MAX_REASON]

    async def _terminate(self, proc: asyncio.subprocess.Process) -> None:
        if proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), TERM_GRACE)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()

    async def stop(self) -> None:
        """Ask the run loop to end; it SIGTERMs (then SIGKILLs) ffmpeg and removes its files."""
        self._stop.set()
        proc = self._proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
