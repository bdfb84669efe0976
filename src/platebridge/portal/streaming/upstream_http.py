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

Three modules: this one (:class:`UpstreamPool`: slots, idle connections, connect, send),
``upstream_conn.py`` (one connection: buffering, read deadlines, back-pressure) and
``upstream_body.py`` (the answer's head and the body's framing).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque

import httpx

from platebridge.portal.streaming.upstream_body import UpstreamResponse, read_head
from platebridge.portal.streaming.upstream_conn import NothingReceived, UpstreamConn


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
        self._idle: dict[tuple[str, int], list[UpstreamConn]] = {}
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

    def release(self, conn: UpstreamConn, *, reuse: bool) -> None:
        if reuse and not self._closed and conn.reusable:
            now = conn.idle_since = time.monotonic()
            self._idle.setdefault(conn.key, []).append(conn)
            if now >= self._next_prune:  # close expired idle connections of other pods too
                self._next_prune = now + self.keepalive_expiry
                self._prune(now)
        else:
            conn.close()
        self._free_slot()

    def _idle_conn(self, key: tuple[str, int]) -> UpstreamConn | None:
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

    async def _connect(self, key: tuple[str, int]) -> UpstreamConn:
        loop = asyncio.get_running_loop()
        conn = UpstreamConn(key)
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
                except NothingReceived:
                    pass  # a kept-alive connection the POD closed meanwhile: once more, fresh
            conn = await self._connect(key)
            return await self._exchange(conn, request)
        except BaseException:
            self._free_slot()
            raise

    async def _exchange(self, conn: UpstreamConn, request: bytes) -> UpstreamResponse:
        try:
            assert conn.transport is not None
            conn.transport.write(request)
            return await read_head(self, conn)
        except BaseException:
            conn.close()
            raise

    async def aclose(self) -> None:
        self._closed = True
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()
