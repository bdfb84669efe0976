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

    @property
    def codecs(self) -> str:
        return self.fanout.codecs

    @property
    def keyframe_interval(self) -> float | None:
        """The longest of the recently measured keyframe intervals (s), None until measured."""
        return max(self._intervals) if self._intervals else None

    def begin_run(self) -> None:
        self.error = None
        self.last_data = self._last_key = None

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
            if item.keyframe:
                if self._last_key is not None:
                    self._intervals.append(now - self._last_key)
                self._last_key = now
            self.fanout.push(item)
        return True

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
