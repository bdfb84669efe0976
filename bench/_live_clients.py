"""Real clients for the live benchmarks: a counting TCP forwarder (a real boundary between two
programs: what crosses it is what one program sent the other) and WebSocket viewers of the
portal's live route that read the binary stream and time its arrival.

Both run on an asyncio loop of their own in a thread (:class:`LoopThread`), so the benchmark's
own code stays synchronous.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Coroutine
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

from websockets.asyncio.client import connect

from platebridge.core.bmff import child, iter_boxes, u32

T = TypeVar("T")
#: Seconds of lag (arrival - media time) within which the keyframe cache counts as delivered.
CACHE_TOLERANCE = 0.03


class LoopThread:
    """An asyncio event loop running in a daemon thread."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return self.submit(coro).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)


# --- the counting forwarder --------------------------------------------------------------------


@dataclass
class Forwarder:
    """``listen`` → ``target`` TCP forwarder; ``sent`` counts the bytes the connecting side
    sent (``up``) and the bytes the target answered (``down``)."""

    listen: tuple[str, int]
    target: tuple[str, int]
    up: int = 0
    down: int = 0
    connections: int = 0
    _server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, *self.listen)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _pipe(self, r: asyncio.StreamReader, w: asyncio.StreamWriter, way: str) -> None:
        try:
            while data := await r.read(256 * 1024):
                if way == "up":
                    self.up += len(data)
                else:
                    self.down += len(data)
                w.write(data)
                await w.drain()
        except OSError:
            pass
        finally:
            w.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            t_reader, t_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        await asyncio.gather(
            self._pipe(reader, t_writer, "up"),
            self._pipe(t_reader, writer, "down"),
            return_exceptions=True,
        )


# --- viewers -----------------------------------------------------------------------------------


def _timescale(init: bytes) -> int:
    """The first track's media timescale (moov/trak/mdia/mdhd)."""
    moov = child(init, 0, len(init), "moov")
    trak = moov and child(init, moov[0], moov[1], "trak")
    mdia = trak and child(init, trak[0], trak[1], "mdia")
    mdhd = mdia and child(init, mdia[0], mdia[1], "mdhd")
    if not mdhd:
        return 90_000
    version = init[mdhd[0]]
    return u32(init, mdhd[0] + (20 if version == 1 else 12), mdhd[1])


def _decode_times(message: bytes) -> list[int]:
    """Each fragment's baseMediaDecodeTime (moof/traf/tfdt), in order: a binary message holds
    one fragment or several (the portal joins what is queued for a viewer)."""
    out = []
    for kind, body, end in iter_boxes(message, 0, len(message)):
        if kind != "moof":
            continue
        traf = child(message, body, end, "traf")
        tfdt = traf and child(message, traf[0], traf[1], "tfdt")
        if not tfdt:
            continue
        pos = tfdt[0]
        if message[pos] == 1:
            out.append(int.from_bytes(message[pos + 4 : pos + 12], "big"))
        else:
            out.append(u32(message, pos + 4, tfdt[1]))
    return out


@dataclass
class Viewer:
    """One WebSocket viewer; times the start (``opened`` is time.monotonic())."""

    url: str
    headers: dict[str, str]
    keep: int = 400  # fragments whose arrival and media time are kept (the start)
    opened: float = 0.0
    init_text_at: float | None = None
    init_at: float | None = None
    first_at: float | None = None
    #: (arrival, media time of its first and last fragment, bytes, fragments) per message
    arrivals: list[tuple[float, float, float, int, int]] = field(default_factory=list)
    bytes: int = 0
    messages: int = 0
    error: str | None = None
    notices: list[dict[str, Any]] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    def started(self) -> bool:
        """The first fragment arrived, or the viewer failed."""
        return self.first_at is not None or self.error is not None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def run(self) -> None:
        self.opened = time.monotonic()
        scale = 90_000
        try:
            async with connect(
                self.url,
                additional_headers=self.headers,
                max_size=None,
                compression=None,
                open_timeout=20,
                ping_interval=None,
            ) as ws:
                async for message in ws:
                    now = time.monotonic()
                    if isinstance(message, str):
                        body = json.loads(message)
                        if body.get("type") == "init":
                            self.init_text_at = now
                        else:
                            self.notices.append(body)
                        continue
                    self.messages += 1
                    self.bytes += len(message)
                    if self.init_at is None:
                        self.init_at = now
                        scale = _timescale(message)
                        continue
                    if self.first_at is None:
                        self.first_at = now
                    if len(self.arrivals) < self.keep:
                        times = [t / scale for t in _decode_times(message)] or [float("nan")]
                        self.arrivals.append((now, times[0], times[-1], len(message), len(times)))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a result, not a crash of the benchmark
            self.error = f"{type(exc).__name__}: {exc}"[:200]

    def start_figures(self) -> dict[str, Any] | None:
        """Times from opening the socket (ms): the init text, the init segment, the first
        fragment (the keyframe), and the end of the keyframe cache — the first fragment from
        which the stream no longer runs ahead of the wall clock (arrival - media time stops
        falling: before it, cached frames arrive faster than real time; after it, at the
        camera's pace). Also the cache's media seconds and bytes."""
        if self.first_at is None or len(self.arrivals) < 2:
            return None
        t0, m0 = self.arrivals[0][:2]
        lags = [(a[0] - t0) - (a[2] - m0) for a in self.arrivals]
        # The first fragment from which the lag no longer falls (by more than ~a frame):
        # robust to jitter and to a slow drift between the camera's clock and ours.
        suffix_min, low = [0.0] * len(lags), float("inf")
        for i in range(len(lags) - 1, -1, -1):
            low = min(low, lags[i])
            suffix_min[i] = low
        end = next(i for i, lag in enumerate(lags) if lag <= suffix_min[i] + CACHE_TOLERANCE)
        ms = 1000.0
        return {
            "init_text_ms": ((self.init_text_at or self.opened) - self.opened) * ms,
            "init_ms": ((self.init_at or self.opened) - self.opened) * ms,
            "first_fragment_ms": (self.first_at - self.opened) * ms,
            "cache_done_ms": (self.arrivals[end][0] - self.opened) * ms,
            "cache_media_s": self.arrivals[end][2] - m0,
            "cache_fragments": sum(a[4] for a in self.arrivals[: end + 1]),
            "cache_messages": end + 1,
            "cache_bytes": sum(a[3] for a in self.arrivals[: end + 1]),
        }
