"""One TCP connection of the lean upstream client (:mod:`.upstream_http`) to a POD.

An :class:`asyncio.Protocol` that buffers what the socket delivers, hands it to one reader
at a time with a read deadline, and pauses reading while more than ``HIGH_WATER`` bytes wait
for a viewer slower than the POD. Failures are httpx's own exception types.
"""

from __future__ import annotations

import asyncio
from collections import deque

import httpx

#: Pause reading from the POD while this much is buffered and not yet sent on to the viewer.
HIGH_WATER = 256 * 1024


class UpstreamConn(asyncio.Protocol):
    """One TCP connection to a POD: buffered chunks, one reader at a time, read deadlines."""

    def __init__(self, key: tuple[str, int]) -> None:
        self.key = key
        self.transport: asyncio.Transport | None = None
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._eof = False
        self._lost = False
        self._paused = False
        self._waiter: asyncio.Future[None] | None = None
        self.idle_since = 0.0

    # --- protocol callbacks -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        self._chunks.append(data)
        self._size += len(data)
        if self._size >= HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool | None:
        self._eof = True
        self._wake()
        return None  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._eof = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # --- state -----------------------------------------------------------------------------

    @property
    def reusable(self) -> bool:
        """Idle, open, and nothing unexpected arrived since the last response."""
        return (
            not self._eof
            and not self._lost
            and self._size == 0
            and self.transport is not None
            and not self.transport.is_closing()
        )

    def close(self) -> None:
        if self.transport is not None:
            self.transport.abort()
        self._lost = True
        self._chunks.clear()
        self._size = 0

    # --- reading ----------------------------------------------------------------------------

    async def _wait(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        self._waiter = waiter
        timer = loop.call_later(seconds, _expire, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    def _resume(self) -> None:
        if self._paused and self._size < HIGH_WATER and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()

    async def read_some(self, limit: int, seconds: float) -> bytes:
        """Up to ``limit`` bytes as soon as any are there; b"" at end of stream."""
        if not self._chunks:
            if self._eof:
                return b""
            await self._wait(seconds)
            if not self._chunks:
                if self._eof:
                    return b""
                raise httpx.ReadError("no data")  # pragma: no cover - woken without data
        data = self._chunks.popleft()
        if len(data) > limit:
            self._chunks.appendleft(data[limit:])
            data = data[:limit]
        self._size -= len(data)
        self._resume()
        return data

    async def read_until(self, sep: bytes, limit: int, seconds: float) -> bytes:
        """Everything up to and including ``sep`` (at most ``limit`` bytes), else an error."""
        while True:
            if self._chunks:
                first = self._chunks[0]
                end = first.find(sep)
                if end < 0 and len(self._chunks) > 1:
                    first = b"".join(self._chunks)
                    self._chunks.clear()
                    self._chunks.append(first)
                    end = first.find(sep)
                if end >= 0 and end + len(sep) <= limit:
                    cut = end + len(sep)
                    self._chunks.popleft()
                    if cut < len(first):
                        self._chunks.appendleft(first[cut:])
                    self._size -= cut
                    self._resume()
                    return first[:cut]
                if len(first) >= limit or end >= 0:
                    raise httpx.RemoteProtocolError("header or chunk line too long")
            if self._eof:
                if self._size:
                    raise httpx.RemoteProtocolError("connection closed mid-message")
                raise NothingReceived("server disconnected without a response")
            if self._paused and self.transport is not None:
                # what is buffered does not hold ``sep`` yet: the rest must be able to arrive
                self._paused = False
                self.transport.resume_reading()
            await self._wait(seconds)


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(httpx.ReadTimeout("timed out"))


class NothingReceived(httpx.RemoteProtocolError):
    """The connection closed before a single byte of the answer (safe to retry a GET)."""
