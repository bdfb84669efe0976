"""The live output of one camera: ffmpeg's stdout → :mod:`core.fmp4` → a :class:`LiveFanout`.

The supervisor starts one :meth:`CameraLive.pump` per ffmpeg run and calls
:meth:`CameraLive.end_run` when the run ends (every viewer's stream then ends with the reason;
players reconnect and get the next run's init segment). The pump always drains ffmpeg's
stdout, even when the bytes cannot be used, so the HLS output of the same ffmpeg never blocks.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable

from platebridge.core.fmp4 import Fmp4Error, InitSegment, Splitter, codecs_from_init
from platebridge.core.live import LiveFanout

log = logging.getLogger("platebridge.pod.live")

READ_SIZE = 64 * 1024
#: Keyframe intervals remembered; the watchdog uses the longest of them.
INTERVALS = 8
#: Intervals needed before one counts as measured: a camera sends an extra keyframe when
#: another RTSP client joins (an NVR, a technician's VLC), which splits one GOP into two short
#: gaps; with three gaps one is a whole regular interval.
MIN_INTERVALS = 3
#: The bitrate is the live output's bytes over (about) the last BITRATE_WINDOW seconds,
#: sampled at most every BITRATE_SAMPLE seconds.
BITRATE_WINDOW = 30.0
BITRATE_SAMPLE = 1.0
#: The reported bitrate changes only when the measurement moves this far from it (relative):
#: a VBR camera's ±10 % would otherwise change the heartbeat's content (and defeat the
#: portal's digest fast path) at every beat.
BITRATE_HYSTERESIS = 0.25


def round_significant(value: float, digits: int = 2) -> int:
    """``4137.2`` → ``4100``: ``digits`` significant digits, as an int (0 stays 0)."""
    if value <= 0:
        return 0
    return int(float(f"{value:.{digits - 1}e}"))


class CameraLive:
    def __init__(self, camera_id: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.camera_id = camera_id
        self.fanout = LiveFanout(clock=clock)
        self._clock = clock
        #: Why live view is unavailable although ffmpeg runs (a codec MSE cannot take, …).
        self.error: str | None = None
        #: Monotonic time of the last fragment of this run (None: none yet).
        self.last_data: float | None = None
        self._last_key: float | None = None
        self._intervals: deque[float] = deque(maxlen=INTERVALS)
        #: Bytes of fragments this run, and (time, bytes so far) samples for the bitrate.
        self.bytes_in = 0
        self._samples: deque[tuple[float, int]] = deque()
        self._reported_kbps: int | None = None

    @property
    def codecs(self) -> str:
        return self.fanout.codecs

    @property
    def keyframe_interval(self) -> float | None:
        """The longest of the recently measured keyframe intervals (s); None until
        :data:`MIN_INTERVALS` gaps have been measured (one extra keyframe cannot shrink it)."""
        return max(self._intervals) if len(self._intervals) >= MIN_INTERVALS else None

    def bitrate_kbps(self) -> int | None:
        """The live output's bitrate (kbit/s) over the last ~30 s, 2 significant digits, kept
        until a measurement differs by more than 25 %; None until 2 s have been measured."""
        if len(self._samples) < 2 or self.last_data is None:
            return None
        (t0, b0), (t1, b1) = self._samples[0], self._samples[-1]
        span = t1 - t0
        if span < 2.0:
            return None
        measured = (b1 - b0) * 8 / span / 1000
        reported = self._reported_kbps
        if reported is None or abs(measured - reported) > BITRATE_HYSTERESIS * max(reported, 1):
            self._reported_kbps = reported = round_significant(measured)
        return reported

    def begin_run(self) -> None:
        self.error = None
        self.last_data = self._last_key = None
        self.bytes_in = 0
        self._samples.clear()
        self._reported_kbps = None

    def end_run(self, reason: str) -> None:
        """The ffmpeg run is over: every subscription ends with ``reason``."""
        self.fanout.close(reason)
        self.last_data = self._last_key = None

    def feed(self, splitter: Splitter, chunk: bytes) -> bool:
        """Feed one chunk of ffmpeg's stdout; False once the stream is unusable (see error)."""
        try:
            items = splitter.feed(chunk)
        except Fmp4Error as exc:
            return self._fail(f"live output unreadable: {exc}")
        for item in items:
            if isinstance(item, InitSegment):
                try:
                    codecs = codecs_from_init(item.data)
                except Fmp4Error as exc:
                    return self._fail(f"live view unavailable: {exc}")
                self.fanout.set_init(item.data, codecs)
                log.info("camera %s: live output %s", self.camera_id, codecs)
                continue
            now = self._clock()
            self.last_data = now
            self.bytes_in += len(item.data)
            self._sample(now)
            if item.keyframe:
                if self._last_key is not None:
                    self._intervals.append(now - self._last_key)
                self._last_key = now
            self.fanout.push(item)
        return True

    def _sample(self, now: float) -> None:
        """Samples ≥ BITRATE_SAMPLE apart; the newest one moves with every fragment."""
        samples = self._samples
        if len(samples) < 2 or now - samples[-2][0] >= BITRATE_SAMPLE:
            samples.append((now, self.bytes_in))
        else:
            samples[-1] = (now, self.bytes_in)
        while len(samples) > 2 and now - samples[0][0] > BITRATE_WINDOW:
            samples.popleft()

    def _fail(self, reason: str) -> bool:
        self.error = reason
        log.warning("camera %s: %s", self.camera_id, reason)
        self.fanout.close("live_unavailable")
        return False

    async def pump(self, stream: asyncio.StreamReader) -> None:
        """Read ffmpeg's stdout to its end (EOF when ffmpeg exits)."""
        splitter = Splitter()
        usable = True
        while chunk := await stream.read(READ_SIZE):
            if usable:
                usable = self.feed(splitter, chunk)
