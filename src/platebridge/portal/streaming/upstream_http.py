"""A small keep-alive HTTP/1.1 client for the relay's plain-HTTP POD requests.

The relay only ever sends ``GET <fixed path>?token=…`` to a POD's literal, SSRF-approved
``http://ip:port`` and streams the body through. httpx (with httpcore, h11 and anyio under it)
costs about half of the portal's CPU doing that; this client does the same on an
:class:`asyncio.Protocol`: no per-chunk task hops, body chunks handed on as the socket delivers
them (up to 256 KiB, never re-chunked), reading paused while a viewer is slower than the POD.

It raises httpx's own exception types (``ConnectError``, ``ConnectTimeout``, ``ReadTimeout``,
``ReadError``, ``RemoteProtocolError``, ``PoolTimeout``) so the relay maps failures exactly as
before, and its responses offer the small part of :class:`httpx.Response` the relay uses
(``status_code``, lower-case ``headers``, ``aiter_bytes``, ``aclose``).

Strict limits: status line and headers together ≤ 64 KiB and ≤ 100 header lines; a
``Content-Length`` or ``chunked`` body (chunk-size lines ≤ 1 KiB), otherwise until the POD
closes. Connections are pooled per ``(host, port)`` and reused only after a body was read to its
end, idle at most ``keepalive_expiry`` seconds; a response closed early closes its connection.
No redirects, proxies, cookies or compression. Tunnel URLs keep going through httpx.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import deque
from collections.abc import AsyncIterator

import httpx

MAX_HEAD_BYTES = 64 * 1024
MAX_HEADER_LINES = 100
MAX_CHUNK_LINE = 1024
READ_SIZE = 256 * 1024
#: Pause reading from the POD while this much is buffered and not yet sent on to the viewer.
HIGH_WATER = 256 * 1024
_STATUS_LINE = re.compile(rb"HTTP/1\.([01]) ([1-9][0-9]{2})(?: [^\r\n]*)?")
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


class _Conn(asyncio.Protocol):
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
                raise _NothingReceived("server disconnected without a response")
            if self._paused and self.transport is not None:
                # what is buffered does not hold ``sep`` yet: the rest must be able to arrive
                self._paused = False
                self.transport.resume_reading()
            await self._wait(seconds)


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(httpx.ReadTimeout("timed out"))


class UpstreamResponse:
    """A POD's answer with its body not yet read (the part of httpx.Response the relay uses)."""

    def __init__(
        self,
        pool: UpstreamPool,
        conn: _Conn,
        status_code: int,
        headers: dict[str, str],
        *,
        length: int | None,
        chunked: bool,
        keep_alive: bool,
    ) -> None:
        self._pool = pool
        self._conn: _Conn | None = conn
        self.status_code = status_code
        self.headers = headers
        self._remaining = length  # None: chunked or until close
        self._chunked = chunked
        self._chunk_left = 0
        self._keep_alive = keep_alive
        self._done = length == 0

    async def aiter_bytes(self, chunk_size: int | None = None) -> AsyncIterator[bytes]:
        limit = chunk_size or READ_SIZE
        while True:
            data = await self._read(limit)
            if not data:
                return
            yield data

    async def _read(self, limit: int) -> bytes:
        conn = self._conn
        if self._done or conn is None:
            return b""
        timeout = self._pool.read_timeout
        if self._chunked:
            return await self._read_chunked(conn, limit, timeout)
        if self._remaining is not None:
            data = await conn.read_some(min(limit, self._remaining), timeout)
            if not data:
                raise httpx.RemoteProtocolError("connection closed before the body ended")
            self._remaining -= len(data)
            if self._remaining == 0:
                self._done = True
            return data
        data = await conn.read_some(limit, timeout)
        if not data:
            self._done = True
            self._keep_alive = False
        return data

    async def _read_chunked(self, conn: _Conn, limit: int, seconds: float) -> bytes:
        if self._chunk_left == 0:
            line = await conn.read_until(b"\r\n", MAX_CHUNK_LINE, seconds)
            size_text = line[:-2].split(b";", 1)[0].strip()
            if not size_text or len(size_text) > 16 or not _is_hex(size_text):
                raise httpx.RemoteProtocolError("bad chunk size")
            size = int(size_text, 16)
            if size == 0:
                for _ in range(MAX_HEADER_LINES):  # trailers, up to the empty line
                    if await conn.read_until(b"\r\n", MAX_CHUNK_LINE, seconds) == b"\r\n":
                        self._done = True
                        return b""
                raise httpx.RemoteProtocolError("too many trailers")
            self._chunk_left = size
        data = await conn.read_some(min(limit, self._chunk_left), seconds)
        if not data:
            raise httpx.RemoteProtocolError("connection closed mid-chunk")
        self._chunk_left -= len(data)
        if self._chunk_left == 0 and await conn.read_until(b"\r\n", 2, seconds) != b"\r\n":
            raise httpx.RemoteProtocolError("bad chunk end")  # pragma: no cover - read_until
        return data

    async def aread(self) -> bytes:
        return b"".join([chunk async for chunk in self.aiter_bytes()])

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        self._pool.release(conn, reuse=self._done and self._keep_alive)


def _is_hex(text: bytes) -> bool:
    return all(c in b"0123456789abcdefABCDEF" for c in text)


class UpstreamPool:
    """Keep-alive connections per ``(host, port)``, at most ``max_connections`` in use."""

    def __init__(
        self,
        *,
        connect_timeout: float,
        read_timeout: float,
        max_connections: int,
        keepalive_expiry: float,
        user_agent: str = "platebridge-portal-relay",
    ) -> None:
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_connections = max_connections
        self.keepalive_expiry = keepalive_expiry
        self._user_agent = user_agent.encode("ascii")
        self._idle: dict[tuple[str, int], list[_Conn]] = {}
        self._in_use = 0
        self._slot_waiters: deque[asyncio.Future[None]] = deque()
        self._closed = False
        self._next_prune = 0.0

    # --- slots ------------------------------------------------------------------------------

    async def _acquire(self) -> None:
        if self._in_use < self.max_connections and not self._slot_waiters:
            self._in_use += 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._slot_waiters.append(waiter)
        try:
            async with asyncio.timeout(self.connect_timeout):
                await waiter  # the releaser passes its slot on, still counted
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled():
                self._free_slot()  # handed over just as the wait ended: give it back
            else:
                waiter.cancel()
                if waiter in self._slot_waiters:
                    self._slot_waiters.remove(waiter)
            if isinstance(exc, TimeoutError):
                raise httpx.PoolTimeout("no free connection") from None
            raise

    def _free_slot(self) -> None:
        while self._slot_waiters:
            waiter = self._slot_waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes on, still counted
                return
        self._in_use -= 1

    def release(self, conn: _Conn, *, reuse: bool) -> None:
        if reuse and not self._closed and conn.reusable:
            now = conn.idle_since = time.monotonic()
            self._idle.setdefault(conn.key, []).append(conn)
            if now >= self._next_prune:  # close expired idle connections of other pods too
                self._next_prune = now + self.keepalive_expiry
                self._prune(now)
        else:
            conn.close()
        self._free_slot()

    def _idle_conn(self, key: tuple[str, int]) -> _Conn | None:
        conns = self._idle.get(key)
        now = time.monotonic()
        while conns:
            conn = conns.pop()
            if conn.reusable and now - conn.idle_since < self.keepalive_expiry:
                return conn
            conn.close()
        self._prune(now)
        return None

    def _prune(self, now: float) -> None:
        for key in list(self._idle):
            alive = []
            for conn in self._idle[key]:
                if conn.reusable and now - conn.idle_since < self.keepalive_expiry:
                    alive.append(conn)
                else:
                    conn.close()
            if alive:
                self._idle[key] = alive
            else:
                del self._idle[key]

    async def _connect(self, key: tuple[str, int]) -> _Conn:
        loop = asyncio.get_running_loop()
        conn = _Conn(key)
        try:
            async with asyncio.timeout(self.connect_timeout):
                await loop.create_connection(lambda: conn, key[0], key[1])
        except TimeoutError:
            conn.close()
            raise httpx.ConnectTimeout("connect timed out") from None
        except OSError:
            conn.close()
            raise httpx.ConnectError("connect failed") from None
        return conn

    # --- requests ---------------------------------------------------------------------------

    async def get(self, host: str, port: int, target: bytes) -> UpstreamResponse:
        """Send ``GET target`` to ``host:port``; the response's body is not read yet.

        ``host`` is a literal address or name (brackets not included), ``target`` the
        already-encoded path and query. Cancelling the call closes the connection.
        """
        if self._closed:
            raise httpx.ConnectError("client closed")
        if b"\r" in target or b"\n" in target or b" " in target or not target.startswith(b"/"):
            raise httpx.UnsupportedProtocol("bad request target")
        key = (host, port)
        authority = f"[{host}]" if ":" in host else host
        if port != 80:
            authority += f":{port}"
        request = b"".join(
            (
                b"GET ",
                target,
                b" HTTP/1.1\r\nHost: ",
                authority.encode("ascii"),
                b"\r\nUser-Agent: ",
                self._user_agent,
                b"\r\nAccept: */*\r\nAccept-Encoding: identity\r\n\r\n",
            )
        )
        await self._acquire()
        try:
            conn = self._idle_conn(key)
            if conn is not None:
                try:
                    return await self._exchange(conn, request)
                except _NothingReceived:
                    pass  # a kept-alive connection the POD closed meanwhile: once more, fresh
            conn = await self._connect(key)
            return await self._exchange(conn, request)
        except BaseException:
            self._free_slot()
            raise

    async def _exchange(self, conn: _Conn, request: bytes) -> UpstreamResponse:
        try:
            assert conn.transport is not None
            conn.transport.write(request)
            return await self._read_head(conn)
        except BaseException:
            conn.close()
            raise

    async def _read_head(self, conn: _Conn) -> UpstreamResponse:
        timeout = self.read_timeout
        while True:
            head = await conn.read_until(b"\r\n\r\n", MAX_HEAD_BYTES, timeout)
            lines = head[:-4].split(b"\r\n")
            match = _STATUS_LINE.fullmatch(lines[0])
            if match is None:
                raise httpx.RemoteProtocolError("bad status line")
            if len(lines) > MAX_HEADER_LINES + 1:
                raise httpx.RemoteProtocolError("too many headers")
            status = int(match.group(2))
            headers = _parse_headers(lines[1:])
            if 100 <= status < 200:
                if status == 101:
                    raise httpx.RemoteProtocolError("unexpected protocol switch")
                continue  # informational: the real answer follows
            break
        http10 = match.group(1) == b"0"
        connection = headers.get("connection", "").lower()
        keep_alive = "close" not in connection and (not http10 or "keep-alive" in connection)
        encoding = headers.get("transfer-encoding")
        length_text = headers.get("content-length")
        chunked = False
        length: int | None = None
        if status in (204, 304):
            length = 0
        elif encoding is not None:
            if encoding.strip().lower() != "chunked" or length_text is not None:
                raise httpx.RemoteProtocolError("unsupported transfer encoding")
            chunked = True
        elif length_text is not None:
            values = {v.strip() for v in length_text.split(",")}
            if len(values) != 1:
                raise httpx.RemoteProtocolError("conflicting content lengths")
            value = values.pop()
            if not value.isascii() or not value.isdigit() or len(value) > 18:
                raise httpx.RemoteProtocolError("bad content length")
            length = int(value)
        else:
            keep_alive = False  # the body ends when the POD closes
        return UpstreamResponse(
            self,
            conn,
            status,
            headers,
            length=length,
            chunked=chunked,
            keep_alive=keep_alive,
        )

    async def aclose(self) -> None:
        self._closed = True
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()


class _NothingReceived(httpx.RemoteProtocolError):
    """The connection closed before a single byte of the answer (safe to retry a GET)."""


def _parse_headers(lines: list[bytes]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in lines:
        name, sep, value = line.partition(b":")
        if not sep or not _TOKEN.fullmatch(name):
            raise httpx.RemoteProtocolError("bad header line")
        value = value.strip(b" \t")
        if _BAD_VALUE.search(value):
            raise httpx.RemoteProtocolError("bad header value")
        key = name.decode("ascii").lower()
        text = value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return headers
