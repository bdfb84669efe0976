"""The agent's recording: one :class:`Recording` per POD, one :class:`CameraRecorder` per camera.

The camera supervisor asks its recorder whether the next ffmpeg run records
(:meth:`CameraRecorder.wanted`), calls :meth:`~CameraRecorder.before_run` (day directories,
a scan of what the previous run left) and :meth:`~CameraRecorder.after_run` (the last file
repaired and indexed, a gap opened), and restarts ffmpeg when :meth:`~CameraRecorder.switch`
says the recording should go on or off (disk full, space back). :meth:`Recording.run` is the
loop (every :data:`LOOP_SECONDS`): today's and tomorrow's directories (``segment`` with
``strftime`` creates no directory), the growing files indexed, retention, the agent's last sign
of life (``pod_down`` gaps after a crash start there). Nothing here may stop live view: every
failure is logged and shown as the recording state ``error``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from platebridge.core.aio import within
from platebridge.core.heartbeat import CameraRecording, PodDisk, RecordingState
from platebridge.pod.config import CameraConfig, PodConfig
from platebridge.pod.ffmpeg import recording_dir
from platebridge.pod.recording.index import GapReason, RecordingIndex
from platebridge.pod.recording.retention import DiskUsage, disk_usage, retention_pass
from platebridge.pod.recording.scanner import scan_camera

log = logging.getLogger("platebridge.pod.recording")

LOOP_SECONDS = 10.0
INDEX_NAME = "index.sqlite3"
#: ffmpeg runs with this environment: ``strftime`` file names in UTC.
FFMPEG_ENV = {"TZ": "UTC"}


def two_digits(value: int) -> int:
    """``value`` to 2 significant digits (coarse: the heartbeat digest stays the same)."""
    if value < 100:
        return value
    scale = 10 ** (len(str(value)) - 2)
    return int(round(value / scale) * scale)


class CameraRecorder:
    def __init__(self, recording: Recording, camera: CameraConfig) -> None:
        self.recording = recording
        self.camera = camera
        self.camera_id = camera.camera_id
        self.dir = recording_dir(recording.config, camera.camera_id)
        #: Whether the ffmpeg running now records (None: no ffmpeg running).
        self.running: bool | None = None
        self.error: str | None = None

    def wanted(self) -> bool:
        rec = self.recording
        return self.camera.record and rec.index is not None and not rec.disk_full

    def switch(self) -> bool:
        """ffmpeg should be restarted: it records and should not, or the other way round."""
        return self.running is not None and self.running != self.wanted()

    def state(self) -> RecordingState:
        if not self.camera.record:
            return "off"
        if self.recording.disk_full:
            return "disk_full"
        if self.recording.index is None or self.error is not None:
            return "error"
        return "recording" if self.running else "off"

    def prepare_dirs(self) -> None:
        today = datetime.now(UTC)
        for day in (today, today + timedelta(days=1)):
            (self.dir / day.strftime("%Y-%m-%d")).mkdir(parents=True, exist_ok=True)

    async def before_run(self) -> bool:
        """Before an ffmpeg start: index and repair what is on disk; whether to record."""
        record = self.wanted()
        index = self.recording.index
        if index is not None and self.camera.record:
            try:
                await asyncio.to_thread(self.prepare_dirs)
                await asyncio.to_thread(scan_camera, index, self.camera_id, self.dir, False)
                self.error = None
            except OSError as exc:
                self._fail(f"cannot write {self.dir}: {exc.strerror or exc}")
                record = False
        self.running = record
        return record

    async def after_run(self, stopping: bool, reason: str) -> None:
        """After ffmpeg ended: its last file repaired and indexed, a gap opened."""
        recorded, self.running = self.running, None
        index = self.recording.index
        if index is None or not self.camera.record:
            return
        try:
            if recorded:
                await asyncio.to_thread(scan_camera, index, self.camera_id, self.dir, False, 2)
            if "No space left" in reason:
                await self.recording.retention()
            why: GapReason = "pod_down" if stopping else "camera_down"
            if self.recording.disk_full:
                why = "disk_full"
            await asyncio.to_thread(index.open_gap, self.camera_id, why)
        except Exception as exc:  # the index must never take the camera down with it
            self._fail(f"index: {type(exc).__name__}: {exc}")

    def on_active(self) -> None:
        """ffmpeg produces video: the camera's gap (if recording) ends now."""
        index = self.recording.index
        if index is None or not self.running:
            return
        try:
            index.close_gap(self.camera_id)
        except Exception as exc:
            self._fail(f"index: {type(exc).__name__}: {exc}")

    def _fail(self, error: str) -> None:
        if error != self.error:
            log.warning("recording %s: %s", self.camera_id, error)
        self.error = error

    def heartbeat(self) -> CameraRecording:
        index = self.recording.index
        summary = None
        if index is not None:
            with contextlib.suppress(Exception):
                summary = index.summary(self.camera_id)
        newest = summary.newest if summary else None
        return CameraRecording(
            enabled=self.camera.record,
            state=self.state(),
            oldest=round(summary.oldest / 60) * 60 if summary and summary.oldest else None,
            newest=round(newest / 60) * 60 if newest else None,
            bytes=two_digits(summary.bytes) if summary else 0,
            gaps_24h=len(summary.recent_gaps) if summary else 0,
        )


class Recording:
    """The POD's recording: the index, the per-camera recorders, the loop (module doc)."""

    def __init__(self, config: PodConfig) -> None:
        self.config = config
        self.index: RecordingIndex | None = None
        self.error: str | None = None
        self.disk_full = False
        self.disk: DiskUsage | None = None
        self._stop = asyncio.Event()
        self._rate = 0.0  # bytes/s written, measured between passes
        self._last: tuple[float, int] | None = None
        self._freed = 0  # bytes retention deleted since the last measurement
        self._lock = asyncio.Lock()
        if any(c.record for c in config.cameras):
            try:
                config.recording_dir.mkdir(parents=True, exist_ok=True)
                self.index = RecordingIndex(config.recording_dir / INDEX_NAME)
                self._mark_start()
            except Exception as exc:
                self.error = f"cannot open the recording index: {type(exc).__name__}: {exc}"
                log.error("recording: %s; recording is off", self.error)
                self.index = None
        self.cameras = {c.camera_id: CameraRecorder(self, c) for c in config.cameras}

    def _mark_start(self) -> None:
        """Gaps since the agent's last sign of life: ``pod_down`` until each camera records
        again; ``recording_off`` for cameras that do not record."""
        assert self.index is not None
        now = time.time()
        alive = self.index.meta("alive")
        self.index.close_open_gaps(alive if alive is not None else now)
        for camera in self.config.cameras:
            if not camera.record:
                self.index.open_gap(camera.camera_id, "recording_off", now)
            elif alive is not None:
                self.index.open_gap(camera.camera_id, "pod_down", alive)
        self.index.set_meta("alive", now)

    def recorder(self, camera_id: str) -> CameraRecorder | None:
        return self.cameras.get(camera_id)

    async def retention(self) -> None:
        index = self.index
        if index is None:
            return
        async with self._lock:
            headroom = int(self._rate * LOOP_SECONDS * 3)
            result = await asyncio.to_thread(retention_pass, index, self.config, headroom)
        self.disk = result.disk
        self._freed += result.freed
        if result.short != self.disk_full:
            self.disk_full = result.short
            if result.short:
                log.warning(
                    "recording: disk full (%d bytes free, floor %d): recording paused, "
                    "live view goes on",
                    result.disk.free,
                    result.floor,
                )
            else:
                log.info("recording: space is back, recording resumes")

    def _tick(self) -> None:
        """The loop's file work (in a thread): directories, growing files, last sign of life."""
        assert self.index is not None
        for rec in self.cameras.values():
            if not rec.camera.record:
                continue
            rec.prepare_dirs()
            if rec.running:
                scan_camera(self.index, rec.camera_id, rec.dir, True, 2)
        now = time.time()
        total = self.index.total_bytes()
        if self._last is not None and now > self._last[0]:
            # written = what the index grew by + what retention deleted meanwhile (a full
            # disk in steady state grows by nothing, yet ffmpeg writes at the camera's rate)
            written = total - self._last[1] + self._freed
            self._rate = max(0.0, written / (now - self._last[0]))
        self._last, self._freed = (now, total), 0
        self.index.set_meta("alive", now)

    async def run(self) -> None:
        """The loop until :meth:`stop` (never raises: recording must not stop the agent)."""
        while not self._stop.is_set():
            if self.index is not None:
                try:
                    await asyncio.to_thread(self._tick)
                    await self.retention()
                except Exception as exc:
                    log.warning("recording: pass failed: %s: %s", type(exc).__name__, exc)
            with contextlib.suppress(TimeoutError):
                await within(self._stop.wait(), LOOP_SECONDS)

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        if self.index is not None:
            with contextlib.suppress(Exception):
                self.index.set_meta("alive", time.time())
            self.index.close()

    def heartbeat_disk(self) -> PodDisk | None:
        disk = self.disk
        if disk is None:
            with contextlib.suppress(OSError):
                disk = disk_usage(self.config.recording_dir)
        return None if disk is None else PodDisk(total=disk.total, free=two_digits(disk.free))

    def status(self) -> dict[str, Any]:
        """For /health: each camera's recording and the disk."""
        disk = self.heartbeat_disk()
        return {
            "cameras": {k: r.heartbeat().model_dump() for k, r in self.cameras.items()},
            "disk": disk.model_dump() if disk else None,
            "error": self.error,
        }


def index_path(config: PodConfig) -> Path:
    return config.recording_dir / INDEX_NAME
