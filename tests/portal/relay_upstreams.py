"""Test servers for the relay: a raw asyncio "POD" that can misbehave, and a relay app.

Everything runs on one background event loop (:class:`LoopThread`) so the tests themselves can
be plain synchronous functions talking real HTTP over loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import uvicorn
from fastapi import FastAPI
from starlette.responses import Response

from platebridge.portal.streaming.relay import PodRelay
from platebridge.portal.streaming.relay_errors import UpstreamError, upstream_error_handler
from tests.support.procs import free_port

T = TypeVar("T")

PLAYLIST = (
    "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:7\n"
    "#EXTINF:2.000000,\nstream/cam-1/seg_00007.ts?token=POD-SECRET-TOKEN\n"
    "#EXTINF:2.000000,\nstream/cam-1/seg_00008.ts?token=POD-SECRET-TOKEN\n"
)


def payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


class LoopThread:
    """An asyncio event loop running in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        async def _cancel_rest() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            self.run(_cancel_rest(), timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@dataclass
class Record:
    """What the upstream saw of one tagged request."""

    sent: int = 0
    finished: bool = False
    peer_closed: threading.Event = field(default_factory=threading.Event)
    gate: threading.Event = field(default_factory=threading.Event)


class Upstream:
    """A raw HTTP/1.1 server with keep-alive and scripted misbehaviour, selected by path."""

    def __init__(self) -> None:
        self.port = 0
        self.accepted = 0
        self.hits: dict[str, int] = {}
        self.records: dict[str, Record] = {}
        self._server: asyncio.Server | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def record(self, tag: str) -> Record:
        return self.records.setdefault(tag, Record())

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                target = head.split(b"\r\n", 1)[0].split(b" ")[1].decode()
                parts = urlsplit(target)
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                self.hits[parts.path] = self.hits.get(parts.path, 0) + 1
                handler = getattr(self, "h_" + parts.path.strip("/").replace("-", "_"), None)
                if handler is None:
                    await self._send(writer, 404, b'{"error":"nope"}', "application/json")
                    continue
                keep = await handler(reader, writer, query)
                if not keep:
                    return
        except (ConnectionError, asyncio.CancelledError):
            return
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    @staticmethod
    async def _send(
        writer: asyncio.StreamWriter,
        status: int,
        body: bytes,
        ctype: str,
        extra: str = "",
    ) -> bool:
        writer.write(
            f"HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\n{extra}\r\n".encode()
            + body
        )
        await writer.drain()
        return True

    # --- well-behaved -------------------------------------------------------------------------

    async def h_stream(self, r: Any, w: asyncio.StreamWriter, q: dict[str, str]) -> bool:
        ctype = q.get("ctype", "application/vnd.apple.mpegurl")
        return await self._send(w, 200, PLAYLIST.encode(), ctype)

    async def h_seg(self, r: Any, w: asyncio.StreamWriter, q: dict[str, str]) -> bool:
        size = int(q.get("size", "1500000"))
        return await self._send(w, 200, payload(size), q.get("ctype", "video/mp2t"))

    async def h_status(self, r: Any, w: asyncio.StreamWriter, q: dict[str, str]) -> bool:
        extra = f"Retry-After: {q['retry_after']}\r\n" if "retry_after" in q else ""
        return await self._send(w, int(q["code"]), b'{"error":"x"}', "application/json", extra)

    async def h_target(self, r: Any, w: asyncio.StreamWriter, q: dict[str, str]) -> bool:
        return await self._send(w, 200, PLAYLIST.encode(), "application/vnd.apple.mpegurl")

    async def h_redirect(self, r: Any, w: asyncio.StreamWriter, q: dict[str, str]) -> bool:
        extra = f"Location: {self.base}/target\r\n"
        return await self._send(w, 302, b"", "text/plain", extra)

    # --- garbage ------------------------------------------------------------------------------

    async def h_garbage(self, r: Any, w: asyncio.StreamWriter, q: dict[str, str]) -> bool:
        return await self._send(w, 200, b"hello world", "application/vnd.apple.mpegurl")

    async def h_binary(self, r: Any, w: asyncio.StreamWriter, q: dict[str, str]) -> bool:
        return await self._send(w, 200, b"#EXTM3U\n\xff\xfe\n", "application/vnd.apple.mpegurl")

    async def h_html(self, r: Any, w: asyncio.StreamWriter, q: dict[str, str]) -> bool:
        return await self._send(w, 200, b"<html>hi</html>", "text/html")

    async def h_big_playlist(self, r: Any, w: asyncio.StreamWriter, q: dict[str, str]) -> bool:
        body = b"#EXTM3U\n" + b"#EXT-X-DISCONTINUITY\n" * 120_000
        if q.get("chunked"):
            w.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.apple.mpegurl\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n"
            )
            for i in range(0, len(body), 65536):
                piece = body[i : i + 65536]
                w.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                await w.drain()
            w.write(b"0\r\n\r\n")
            await w.drain()
            return True
        return await self._send(w, 200, body, "application/vnd.apple.mpegurl")

    async def h_not_http(self, r: Any, w: asyncio.StreamWriter, q: dict[str, str]) -> bool:
        w.write(b"SSH-2.0-OpenSSH\r\n\r\n")
        await w.drain()
        return False

    # --- slow / hanging -----------------------------------------------------------------------

    async def _until_peer_closes(self, reader: asyncio.StreamReader, rec: Record) -> None:
        with contextlib.suppress(ConnectionError):
            while await reader.read(1024):
                pass
        rec.peer_closed.set()

    async def h_hang(self, r: asyncio.StreamReader, w: Any, q: dict[str, str]) -> bool:
        rec = self.record(q.get("tag", "hang"))
        await asyncio.wait_for(self._until_peer_closes(r, rec), 60)
        return False

    async def h_trickle_head(
        self, r: asyncio.StreamReader, w: asyncio.StreamWriter, q: dict[str, str]
    ) -> bool:
        rec = self.record(q.get("tag", "trickle-head"))
        watcher = asyncio.ensure_future(self._until_peer_closes(r, rec))
        w.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        try:
            for _ in range(300):
                if watcher.done():
                    break
                w.write(b"a")
                await w.drain()
                await asyncio.sleep(0.1)
        finally:
            watcher.cancel()
        return False

    async def _slow_body(
        self,
        r: asyncio.StreamReader,
        w: asyncio.StreamWriter,
        rec: Record,
        data: bytes,
        piece: int,
        pause: float,
        gate_after: int | None = None,
    ) -> bool:
        watcher = asyncio.ensure_future(self._until_peer_closes(r, rec))
        head = f"HTTP/1.1 200 OK\r\nContent-Type: video/mp2t\r\nContent-Length: {len(data)}\r\n"
        w.write(head.encode() + b"\r\n")
        try:
            pos = 0
            while pos < len(data):
                if watcher.done():
                    return False
                if gate_after is not None and pos >= gate_after and not rec.gate.is_set():
                    deadline = time.monotonic() + 15
                    while not rec.gate.is_set() and time.monotonic() < deadline:
                        await asyncio.sleep(0.01)
                w.write(data[pos : pos + piece])
                await w.drain()
                pos += piece
                rec.sent = min(pos, len(data))
                if pause:
                    await asyncio.sleep(pause)
            rec.finished = True
            return False  # the watcher may have read from the connection: do not reuse it
        except ConnectionError:
            rec.peer_closed.set()
            return False
        finally:
            watcher.cancel()

    async def h_slow(
        self, r: asyncio.StreamReader, w: asyncio.StreamWriter, q: dict[str, str]
    ) -> bool:
        rec = self.record(q["tag"])
        size = int(q.get("size", str(20 * 1024 * 1024)))
        return await self._slow_body(
            r, w, rec, payload(size, 1), 64 * 1024, float(q.get("pause", "0.05"))
        )

    async def h_trickle_body(
        self, r: asyncio.StreamReader, w: asyncio.StreamWriter, q: dict[str, str]
    ) -> bool:
        rec = self.record(q["tag"])
        # first 100 kB at once, then one byte per second: slower than the relay's read timeout
        data = payload(1_000_000, 2)
        watcher = asyncio.ensure_future(self._until_peer_closes(r, rec))
        w.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: video/mp2t\r\nContent-Length: 1000000\r\n\r\n"
            + data[:100_000]
        )
        rec.sent = 100_000
        try:
            for i in range(60):
                if watcher.done():
                    return False
                await asyncio.sleep(1.0)
                w.write(data[100_000 + i : 100_001 + i])
                await w.drain()
                rec.sent += 1
        except ConnectionError:
            rec.peer_closed.set()
        finally:
            watcher.cancel()
        return False

    async def h_gated(
        self, r: asyncio.StreamReader, w: asyncio.StreamWriter, q: dict[str, str]
    ) -> bool:
        rec = self.record(q["tag"])
        data = payload(int(q.get("size", str(50 * 1024 * 1024))), 3)
        return await self._slow_body(r, w, rec, data, 256 * 1024, 0, gate_after=1024 * 1024)


def relay_app(**relay_options: Any) -> FastAPI:
    """A small app with the two relay routes; the relay lives in the lifespan."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        relay = PodRelay.create(**relay_options)
        app.state.relay = relay
        try:
            yield
        finally:
            await relay.aclose()

    app = FastAPI(lifespan=lifespan)
    app.add_exception_handler(UpstreamError, upstream_error_handler)

    @app.get("/playlist")
    async def playlist(url: str) -> Response:
        text = await app.state.relay.fetch_playlist(url)
        return Response(text, media_type="application/vnd.apple.mpegurl")

    @app.get("/segment")
    async def segment(url: str) -> Response:
        response: Response = await app.state.relay.stream_segment(url)
        return response

    return app


class RelayServer:
    """``relay_app`` served by a real uvicorn on a free loopback port, in a LoopThread."""

    def __init__(self, lt: LoopThread, **relay_options: Any) -> None:
        self.port = free_port()
        self.app = relay_app(**relay_options)
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self._lt = lt
        self._done = asyncio.run_coroutine_threadsafe(self.server.serve(), lt.loop)
        deadline = time.monotonic() + 15
        while not self.server.started:
            if self._done.done() or time.monotonic() > deadline:
                raise RuntimeError("relay test server did not start")
            time.sleep(0.02)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        with contextlib.suppress(Exception):
            self._done.result(15)
