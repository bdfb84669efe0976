"""One supervised ffmpeg per camera: restart with back-off, stall detection, redacted stderr.

One ffmpeg (one RTSP session) writes HLS and, on stdout, the live fragmented MP4
(:mod:`platebridge.pod.live`). Before a start the camera is probed (``ffprobe``) for its
audio codec, which decides the audio options (:func:`platebridge.pod.ffmpeg.audio_plan`);
a run that got video keeps its probe result for the next start.

Status model: ``starting`` until the first video of the agent's life, ``active`` while video
keeps arriving, ``error`` (with a redacted reason) from the first failure until a later run
produces video again. Retries do not flip the status back to ``starting``.

Stall watchdog, from real progress: live fragments arrive once per frame, so no fragment for
``frame_stall`` seconds is a stall; HLS segments are cut only at keyframes, so the playlist
may stay unchanged for one keyframe interval: no new segment for ``1.5 * interval + 2`` s (the
camera's measured interval, or ``max_keyframe_interval`` until measured) is a stall. A 10 s
GOP camera is therefore never restarted for being a 10 s GOP camera.

A camera's substream (``sub_rtsp_url``) is a second supervisor (``sub=True``: its own RTSP
session, the live output only, no HLS, watched by live frames alone) that
:class:`platebridge.pod.substream.OnDemand` runs only while it has viewers. With
``transcode: h264`` the encoder is chosen once (:mod:`platebridge.pod.transcode`); a hardware
encoder whose run produced no video is replaced by libx264 for the following runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import shutil
import signal
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from platebridge.core.aio import within
from platebridge.core.redact import redact_text
from platebridge.pod.backoff import Backoff
from platebridge.pod.camera_probe import ReturnWatch
from platebridge.pod.childproc import die_with_parent
from platebridge.pod.config import CameraConfig, PodConfig
from platebridge.pod.ffmpeg import (
    PLAYLIST_NAME,
    MediaInfo,
    audio_plan,
    camera_argv,
    camera_dir,
    media_probe_argv,
    parse_media_probe,
    sub_argv,
)
from platebridge.pod.live import MIN_INTERVALS, CameraLive
from platebridge.pod.recording.recorder import FFMPEG_ENV, CameraRecorder
from platebridge.pod.stderr_tail import StderrTail
from platebridge.pod.substream import OnDemand
from platebridge.pod.transcode import H264Encoder, choose_encoder

log = logging.getLogger("platebridge.pod.camera")

CameraStatus = Literal["starting", "active", "error"]
POLL_SECONDS = 0.25
#: A run that stayed active this long resets the restart back-off.
HEALTHY_UPTIME = 30.0
TERM_GRACE = 5.0
MAX_REASON = 300


@dataclass
class CameraState:
    camera_id: str
    name: str
    status: CameraStatus = "starting"
    error: str | None = None
    restarts: int = 0
    #: What the last probe found, and a note about it (audio converted or dropped).
    media: MediaInfo | None = None
    note: str | None = None
    #: The live output (None: ``live_output: false``, or a state not made by a supervisor).
    live: CameraLive | None = field(default=None, repr=False, compare=False)
    #: The substream's own state and its on-demand runner (None: no ``sub_rtsp_url``, or
    #: ``live_output: false``). Its ``media`` is set once it has been probed.
    sub: CameraState | None = field(default=None, repr=False, compare=False)
    sub_demand: OnDemand | None = field(default=None, repr=False, compare=False)


class CameraSupervisor:
    def __init__(
        self,
        config: PodConfig,
        camera: CameraConfig,
        on_change: Callable[[], None] | None = None,
        sub: bool = False,
        recorder: CameraRecorder | None = None,
    ) -> None:
        self.config = config
        self.camera = camera
        self.is_sub = sub
        self.recorder = None if sub else recorder
        self._record = False
        self.url = camera.sub_url if sub and camera.sub_url else camera.url
        self.name = f"{camera.camera_id} (substream)" if sub else camera.camera_id
        self.dir = camera_dir(config, camera.camera_id)
        self.state = CameraState(camera.camera_id, camera.name)
        self.tail = StderrTail(config.secrets)
        self.backoff = Backoff(1.0, 2.0, config.restart_backoff_max)
        self.returns = ReturnWatch(self.url, self.name)  # back-off, cut short when it is back
        #: Live fragments come once per frame: none for this long is a stall.
        self.frame_stall = max(4.0 * config.hls_segment_seconds, 4.0)
        # ffmpeg's stream copy starts at the first keyframe: allow one interval more.
        self.start_timeout = config.rtsp_timeout * 2 + 10.0 + config.max_keyframe_interval
        self.probe_timeout = config.rtsp_timeout * 2 + 5.0
        self.live = CameraLive(camera.camera_id) if config.live_output or sub else None
        self.state.live = self.live
        self.substream: OnDemand | None = None
        if not sub and camera.sub_url is not None and config.live_output:
            runner = CameraSupervisor(config, camera, sub=True)
            self.substream = OnDemand(runner.name, runner, config.substream_idle_seconds)
            self.state.sub, self.state.sub_demand = runner.state, self.substream
        self._media: MediaInfo | None = None
        self._encoder: H264Encoder | None = None
        self._hardware_failed = False
        self._segment_gaps: deque[float] = deque(maxlen=8)
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
            log.log(level, "camera %s: %s%s", self.name, status, f" ({error})" * bool(error))
            if self._on_change is not None:
                self._on_change()

    def rearm(self) -> None:
        """Allow :meth:`run` again after :meth:`stop` (a substream started by its next viewer)."""
        self._stop = asyncio.Event()
        self.state.status, self.state.error = "starting", None  # not the last run's error

    def _clean_dir(self) -> None:
        """Drop every file of a previous run so a dead stream is never served as live."""
        if self.is_sub:
            return  # a substream writes no files
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
                kept = self._media if active_for > 0 else None  # a run with video keeps its probe
                self._media = await self.returns.wait(self.backoff.next(), self._stop, reason, kept)
        finally:
            if not self.is_sub:
                shutil.rmtree(self.dir, ignore_errors=True)

    async def _probe(self) -> MediaInfo | None:
        """The camera's streams (one short RTSP session before ffmpeg's); None on failure."""
        argv = media_probe_argv(
            self.config.ffprobe_path, self.camera, self.config.rtsp_timeout, self.url
        )
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        except OSError:
            return None
        talk = asyncio.ensure_future(proc.communicate())
        stop = asyncio.ensure_future(self._stop.wait())
        try:
            done, _ = await asyncio.wait(
                {talk, stop}, timeout=self.probe_timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            stop.cancel()
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
            talk.cancel()
        if talk not in done:
            return None
        out, _ = talk.result()
        media = parse_media_probe(out.decode(errors="replace")) if proc.returncode == 0 else None
        return media if media is not None and media.video_codec else None

    async def _prepare(self) -> MediaInfo | None:
        if self._media is None:
            self._media = await self._probe()
            if self.is_sub:  # a substream carries no audio (grid tiles are muted)
                media = self._media
                self.state.media = media and dataclasses.replace(media, audio_codec=None)
                return self._media
            self.state.media = self._media
            note = audio_plan(self._media)[1]
            if note != self.state.note:
                self.state.note = note
                if note:
                    log.info("camera %s: %s", self.camera.camera_id, note)
        return self._media

    async def _choose_encoder(self) -> H264Encoder:
        """The H.264 encoder for ``transcode: h264`` (found once; libx264 after a hardware
        encoder failed)."""
        if self._hardware_failed:
            return "libx264"
        if self._encoder is None:
            self._encoder = await choose_encoder(self.config.ffmpeg_path, self.config.h264_encoder)
            if self.camera.transcode == "h264":
                log.info("camera %s: transcoding with %s", self.name, self._encoder)
        return self._encoder

    def _argv(self, media: MediaInfo | None, encoder: H264Encoder) -> list[str]:
        if self.is_sub:
            return sub_argv(self.config, self.camera, media, encoder)
        live = self.live is not None
        return camera_argv(self.config, self.camera, media, live, encoder, self._record)

    async def _run_once(self) -> tuple[str, float]:
        """Run ffmpeg until it exits, stalls or we stop; return (reason, seconds active)."""
        self._clean_dir()
        self.tail.clear()
        media = await self._prepare()
        encoder = await self._choose_encoder() if self.camera.transcode == "h264" else "libx264"
        if self._stop.is_set():
            return "stopped", 0.0
        self._record = self.recorder is not None and await self.recorder.before_run()
        live = self.live
        try:
            proc = await asyncio.create_subprocess_exec(
                *self._argv(media, encoder),
                env={**os.environ, **FFMPEG_ENV},
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE if live else asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        except OSError as exc:
            return f"cannot start ffmpeg: {exc.strerror or exc}", 0.0
        self._proc = proc
        readers = [asyncio.create_task(self._read_stderr(proc))]
        if live is not None:
            assert proc.stdout is not None
            live.begin_run()
            readers.append(asyncio.create_task(live.pump(proc.stdout)))
        reason, active_for = "stopped", 0.0
        try:
            reason, active_for = await self._watch(proc)
        finally:
            await self._terminate(proc)
            with contextlib.suppress(TimeoutError):
                await within(asyncio.gather(*readers), 2.0)
            for task in readers:
                task.cancel()
            self._proc = None
            if self.recorder is not None:
                await self.recorder.after_run(self._stop.is_set(), reason)
            if live is not None:
                live.end_run("camera_stopped" if self._stop.is_set() else "camera_error")
            # The stream is gone: remove the playlist so /stream answers 503, not stale video.
            if not self.is_sub:
                shutil.rmtree(self.dir, ignore_errors=True)
        if active_for <= 0:
            self._media = None  # no video from this run: probe again before the next
            if encoder != "libx264" and not self._stop.is_set():
                log.warning("camera %s: %s gave no video, using libx264", self.name, encoder)
                self._hardware_failed = True
        return reason, active_for

    async def _read_stderr(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        while line := await proc.stderr.readline():
            text = self.tail.add(line)
            if text:
                log.debug("camera %s ffmpeg: %s", self.name, text)

    def _mtime(self) -> int | None:
        if self.is_sub:
            return None  # the directory is the main stream's
        try:
            return self.playlist.stat().st_mtime_ns
        except OSError:
            return None

    def keyframe_interval(self) -> float | None:
        """Measured: from the live fragments, else from the gaps between HLS segments."""
        if self.live is not None and self.live.keyframe_interval is not None:
            return self.live.keyframe_interval
        return max(self._segment_gaps) if len(self._segment_gaps) >= MIN_INTERVALS else None

    def segment_stall(self) -> float:
        interval = self.keyframe_interval() or self.config.max_keyframe_interval
        return max(self.frame_stall, 1.5 * interval + 2.0)

    def _frames(self) -> float | None:
        live = self.live
        return live.last_data if live is not None and live.error is None else None

    def _stalled(self, now: float, segment_at: float, frame_at: float | None) -> str | None:
        if frame_at is not None and now - frame_at > self.frame_stall:
            return f"stalled: no video frame for {self.frame_stall:.0f} s"
        if self.is_sub:
            return None  # no HLS: live frames are the only progress (an unusable live
            # output is not a stall: /live says why)
        limit = self.segment_stall()
        if now - segment_at > limit:
            return f"stalled: no new segment for {limit:.0f} s"
        return None

    async def _watch(self, proc: asyncio.subprocess.Process) -> tuple[str, float]:
        started = time.monotonic()
        last_mtime: int | None = None
        segment_at: float | None = None
        active_since: float | None = None
        self._segment_gaps.clear()
        while True:
            try:
                code = await within(proc.wait(), POLL_SECONDS)
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
                if segment_at is not None:
                    self._segment_gaps.append(now - segment_at)
                last_mtime, segment_at = mtime, now
            frame_at = self._frames()
            if active_since is None:
                if segment_at is not None or frame_at is not None:
                    active_since = now
                    self._set("active")
                    if self.recorder is not None:
                        self.recorder.on_active()
                elif now - started > self.start_timeout:
                    return f"no video within {self.start_timeout:.0f} s", 0.0
                continue
            if self.recorder is not None and self.recorder.switch():
                return "restarting to switch the recording on or off", active_for
            reason = self._stalled(now, segment_at or active_since, frame_at)
            if reason is not None:
                return reason, active_for

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
            await within(proc.wait(), TERM_GRACE)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()

    async def stop(self) -> None:
        """Ask the run loop to end; it SIGTERMs (then SIGKILLs) ffmpeg and removes its files.
        The substream, if running, is stopped with it."""
        self._stop.set()
        proc = self._proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
        if self.substream is not None:
            await self.substream.close()
