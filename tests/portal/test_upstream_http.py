"""The relay's lean HTTP/1.1 client against scripted raw upstreams (edge cases of the wire)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import pytest

from platebridge.portal.streaming.upstream_http import UpstreamPool

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def serve(handler: Handler) -> AsyncIterator[tuple[int, list[int]]]:
    accepted: list[int] = []

    async def on_conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(on_conn, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], accepted
    finally:
        server.close()


def pool(**kw: float) -> UpstreamPool:
    options = {"connect_timeout": 1.0, "read_timeout": 1.0, "max_connections": 4.0}
    options.update(kw)
    return UpstreamPool(
        connect_timeout=options["connect_timeout"],
        read_timeout=options["read_timeout"],
        max_connections=int(options["max_connections"]),
        keepalive_expiry=4.0,
    )


def answer(raw: bytes, *, keep: bool = False) -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(raw)
            await writer.drain()
            if not keep:
                return

    return handler


async def body_of(p: UpstreamPool, port: int) -> tuple[int, bytes]:
    response = await p.get("127.0.0.1", port, b"/x?token=t")
    try:
        return response.status_code, await response.aread()
    finally:
        await response.aclose()


async def test_chunked_body_with_trailers_and_reuse() -> None:
    raw = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n"
    )
    async with serve(answer(raw, keep=True)) as (port, accepted):
        p = pool()
        for _ in range(3):
            assert await body_of(p, port) == (200, b"hello world")
        assert len(accepted) == 1
        await p.aclose()


async def test_http10_body_until_close_and_informational_skipped() -> None:
    raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 OK\r\nContent-Type: video/mp2t\r\n\r\nabc"
    async with serve(answer(raw)) as (port, _):
        p = pool()
        response = await p.get("127.0.0.1", port, b"/x")
        assert response.headers["content-type"] == "video/mp2t"
        assert await response.aread() == b"abc"
        await response.aclose()
        await p.aclose()


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n folded: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: a\x01b\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70_000 + b"\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
    ],
)
async def test_malformed_heads_are_protocol_errors(raw: bytes) -> None:
    async with serve(answer(raw)) as (port, _):
        p = pool()
        with pytest.raises(httpx.RemoteProtocolError):
            await p.get("127.0.0.1", port, b"/x")
        await p.aclose()


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",  # closed early
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX",
    ],
)
async def test_broken_bodies_are_protocol_errors(raw: bytes) -> None:
    async with serve(answer(raw)) as (port, _):
        p = pool()
        response = await p.get("127.0.0.1", port, b"/x")
        with pytest.raises(httpx.RemoteProtocolError):
            await response.aread()
        await response.aclose()
        await p.aclose()


async def test_stale_keepalive_connection_is_retried_once() -> None:
    served = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        await reader.readuntil(b"\r\n\r\n")
        served += 1
        # claims keep-alive, then closes as soon as the answer is out
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        await asyncio.sleep(0.05)

    async with serve(handler) as (port, accepted):
        p = pool()
        assert await body_of(p, port) == (200, b"ok")
        await asyncio.sleep(0.2)  # the server closed it meanwhile
        assert await body_of(p, port) == (200, b"ok")
        assert served == 2 and len(accepted) == 2
        await p.aclose()


async def test_pool_limit_waits_then_pool_timeout() -> None:
    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab")
        await writer.drain()
        await asyncio.sleep(5)

    async with serve(hang) as (port, _):
        p = pool(max_connections=1, connect_timeout=0.2)
        first = await p.get("127.0.0.1", port, b"/x")
        with pytest.raises(httpx.PoolTimeout):
            await p.get("127.0.0.1", port, b"/x")
        await first.aclose()  # half-read: closed, and the slot is free again
        second = await p.get("127.0.0.1", port, b"/x")
        await second.aclose()
        await p.aclose()


async def test_read_timeout_and_refused_connect() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)

    async with serve(silent) as (port, _):
        p = pool(read_timeout=0.2)
        with pytest.raises(httpx.ReadTimeout):
            await p.get("127.0.0.1", port, b"/x")
        await p.aclose()
    p = pool()
    with pytest.raises(httpx.ConnectError):
        await p.get("127.0.0.1", port, b"/x")  # the server is gone
    with pytest.raises(httpx.UnsupportedProtocol):
        await p.get("127.0.0.1", port, b"/x y")
    await p.aclose()
