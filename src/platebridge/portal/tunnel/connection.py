"""One POD's tunnel as seen by the portal process holding it.

A reader task dispatches the POD's frames to per-stream queues (never blocking: the POD may
only send within the credit we granted, so a queue holds at most ``window`` bytes); a writer
task sends our frames from an unbounded queue of small control frames, so cancelling a stream
is a synchronous, ``finally``-safe call. See :mod:`platebridge.core.tunnel` for the protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import uuid
from dataclasses import dataclass, field

from starlette.websockets import WebSocket, WebSocketDisconnect

from platebridge.core import tunnel as proto
from platebridge.core.aio import within

log = logging.getLogger("platebridge.portal.tunnel")


class TunnelClosed(Exception):
    """The tunnel went away (before or while a stream was answered)."""


class StreamReset(Exception):
    """The POD reset the stream; ``error`` is its code (``unreachable``, ``timeout``, …)."""

    def __init__(self, error: str, detail: str) -> None:
        super().__init__(f"{error}: {detail}")
        self.error = error
        self.detail = detail


_Item = bytes | BaseException | None  # DATA, failure, END


def _retrieve(future: asyncio.Future[proto.ResponseHead]) -> None:
    if not future.cancelled():
        future.exception()


@dataclass(eq=False)
class TunnelStream:
    """One request in flight: its response head, then its body chunks."""

    conn: TunnelConnection
    stream_id: int
    head: asyncio.Future[proto.ResponseHead] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    queue: asyncio.Queue[_Item] = field(default_factory=asyncio.Queue)
    buffered: int = 0
    window: int = proto.DEFAULT_WINDOW  # the credit granted at the start (the most buffered)
    finished: bool = False

    def __post_init__(self) -> None:
        # A failure nobody awaits any more (the viewer left) is not an "unretrieved" error.
        self.head.add_done_callback(_retrieve)

    async def read(self) -> bytes | None:
        """The next body chunk, or ``None`` at the end; raises on reset or a lost tunnel."""
        if self.finished:
            return None
        item = await self.queue.get()
        if item is None:
            self.finished = True
            self.conn.forget(self)
            return None
        if isinstance(item, BaseException):
            self.finished = True
            self.conn.forget(self)
            raise item
        self.buffered -= len(item)
        self.conn.grant(self, len(item))
        return item

    def close(self) -> None:
        """Done with this stream (finished or not); cancels it at the POD if still running."""
        if not self.finished:
            self.finished = True
            self.conn.cancel(self)
        if not self.head.done():
            self.head.cancel()


class TunnelConnection:
    """A connected POD: open streams with :meth:`open`; :meth:`run` until the tunnel ends."""

    def __init__(
        self,
        websocket: WebSocket,
        pod_key: uuid.UUID,
        pod_id: str,
        *,
        window: int = proto.DEFAULT_WINDOW,
        max_streams: int = proto.DEFAULT_MAX_STREAMS,
    ) -> None:
        self.websocket = websocket
        self.pod_key = pod_key
        self.pod_id = pod_id
        self.window = window
        self.max_streams = max_streams
        self.closed = asyncio.Event()
        self._ids = itertools.count(1, 2)
        self._streams: dict[int, TunnelStream] = {}
        self._outbox: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._close_code = 1000
        self._close_reason = ""

    @property
    def active_streams(self) -> int:
        return len(self._streams)

    def hello(self) -> bytes:
        limits = proto.Hello(
            v=proto.VERSION,
            window=self.window,
            max_streams=self.max_streams,
            max_data=proto.MAX_DATA,
        )
        return proto.encode_control(proto.FrameType.HELLO, 0, limits)

    # --- streams ----------------------------------------------------------------------------

    def open(self, path: str, query: str) -> TunnelStream:
        """Send a GET for ``path?query`` down the tunnel; raises :class:`TunnelClosed`/busy."""
        if self.closed.is_set():
            raise TunnelClosed("the tunnel is closed")
        if len(self._streams) >= self.max_streams:
            raise StreamReset("busy", "too many concurrent tunnel requests")
        stream = TunnelStream(self, next(self._ids), window=proto.stream_window(path, self.window))
        self._streams[stream.stream_id] = stream
        head = proto.RequestHead(method="GET", path=path, query=query)
        self._outbox.put_nowait(
            proto.encode_control(proto.FrameType.REQUEST, stream.stream_id, head)
        )
        if stream.window > self.window:  # a live body: its keyframe cache crosses at once
            self._outbox.put_nowait(
                proto.encode_credit(stream.stream_id, stream.window - self.window)
            )
        return stream

    def grant(self, stream: TunnelStream, size: int) -> None:
        if size > 0 and stream.stream_id in self._streams:
            self._outbox.put_nowait(proto.encode_credit(stream.stream_id, size))

    def cancel(self, stream: TunnelStream) -> None:
        if self._streams.pop(stream.stream_id, None) is not None and not self.closed.is_set():
            self._outbox.put_nowait(proto.encode(proto.FrameType.CANCEL, stream.stream_id))

    def forget(self, stream: TunnelStream) -> None:
        self._streams.pop(stream.stream_id, None)

    # --- the connection ---------------------------------------------------------------------

    def close(self, code: int, reason: str) -> None:
        """Ask :meth:`run` to end the tunnel (e.g. replaced by a newer one)."""
        self._close_code, self._close_reason = code, reason
        self._outbox.put_nowait(None)

    async def run(self) -> None:
        """Read and write until either side closes; every open stream then fails."""
        reader = asyncio.create_task(self._read(), name=f"tunnel-read-{self.pod_id}")
        writer = asyncio.create_task(self._write(), name=f"tunnel-write-{self.pod_id}")
        try:
            await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.closed.set()
            for task in (reader, writer):
                task.cancel()
            await asyncio.gather(reader, writer, return_exceptions=True)
            failure = TunnelClosed("the tunnel closed")
            for stream in list(self._streams.values()):
                if not stream.head.done():
                    stream.head.set_exception(failure)
                stream.queue.put_nowait(failure)
            self._streams.clear()
            with contextlib.suppress(Exception):
                await within(self.websocket.close(self._close_code, self._close_reason), 2)

    async def _write(self) -> None:
        while True:
            data = await self._outbox.get()
            if data is None:
                return
            await self.websocket.send_bytes(data)

    async def _read(self) -> None:
        try:
            while True:
                message = await self.websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                raw = message.get("bytes")
                frame = proto.decode(raw if raw is not None else message.get("text") or "")
                self._dispatch(frame)
        except WebSocketDisconnect:
            return
        except proto.TunnelProtocolError as exc:
            log.warning("tunnel of pod %s broke the protocol: %s", self.pod_id, exc)
            self._close_code, self._close_reason = proto.CLOSE_PROTOCOL, "protocol error"

    def _dispatch(self, frame: proto.Frame) -> None:
        stream = self._streams.get(frame.stream_id)
        kind = frame.kind
        if kind is proto.FrameType.RESPONSE:
            head = frame.control(proto.ResponseHead)
            if stream is not None and not stream.head.done():
                stream.head.set_result(head)
        elif kind is proto.FrameType.DATA:
            if stream is None:
                return  # cancelled by us; the POD had not seen it yet
            if not stream.head.done():
                raise proto.TunnelProtocolError("DATA before RESPONSE")
            stream.buffered += len(frame.payload)
            if stream.buffered > stream.window:
                raise proto.TunnelProtocolError("DATA beyond the granted credit")
            stream.queue.put_nowait(frame.payload)
        elif kind is proto.FrameType.END:
            if stream is not None:
                self._streams.pop(frame.stream_id, None)
                stream.queue.put_nowait(None)
        elif kind is proto.FrameType.RESET:
            reset = frame.control(proto.Reset)
            if stream is not None:
                self._streams.pop(frame.stream_id, None)
                failure = StreamReset(reset.error, reset.detail)
                if not stream.head.done():
                    stream.head.set_exception(failure)
                stream.queue.put_nowait(failure)
        else:
            raise proto.TunnelProtocolError(f"unexpected {kind.name} from the POD")
