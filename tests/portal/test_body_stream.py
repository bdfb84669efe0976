"""BodyStream (relay segments and tunnel forwarding) driven over ASGI, with a real upstream
response from a loopback server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from platebridge.core.http_client import new_async_client
from platebridge.portal.body_stream import BodyStream

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _head(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(head)
    await writer.drain()


async def complete(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _head(reader, writer, b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nab")
    writer.write(b"cdef")
    await writer.drain()
    writer.close()


async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _head(reader, writer, b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nab")
    writer.close()  # 98 bytes short


def hang(hung_up: asyncio.Event) -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _head(reader, writer, b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nab")
        await reader.read()  # until the portal side closes
        hung_up.set()
        writer.close()

    return handler


@contextlib.asynccontextmanager
async def upstream(handler: Handler) -> AsyncIterator[httpx.Response]:
    """A real upstream response, head read, body not yet."""
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    # a read timeout far beyond the test's bound: only the disconnect can end a hung body
    timeout = httpx.Timeout(5, read=60)
    async with new_async_client(timeout=timeout, component="test") as client:
        request = client.build_request("GET", f"http://127.0.0.1:{port}/seg")
        try:
            yield await client.send(request, stream=True)
        finally:
            server.close()
            await server.wait_closed()


async def _run(
    response: BodyStream, disconnect: asyncio.Event | None = None
) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    gone = disconnect or asyncio.Event()

    async def receive() -> dict[str, Any]:
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if disconnect is not None and message["type"] == "http.response.body":
            disconnect.set()  # the viewer leaves after the first chunk

    scope = {"type": "http", "method": "GET", "path": "/", "headers": []}
    await asyncio.wait_for(response(scope, receive, send), 30)  # a hang guard
    return sent


async def test_status_headers_and_body_are_sent_in_order() -> None:
    async with upstream(complete) as response:
        stream = BodyStream(
            response,
            response.aiter_raw(),
            status_code=206,
            headers=[("content-type", "video/mp2t"), ("x-a", "1"), ("x-a", "2")],
        )
        sent = await _run(stream)
    assert sent[0] == {
        "type": "http.response.start",
        "status": 206,
        "headers": [(b"content-type", b"video/mp2t"), (b"x-a", b"1"), (b"x-a", b"2")],
    }
    assert b"".join(m["body"] for m in sent[1:]) == b"abcdef"
    assert sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
    assert stream.completed and response.is_closed


async def test_an_upstream_cut_truncates_without_a_final_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = logging.getLogger("tests.body_stream")
    caplog.set_level(logging.INFO, logger=log.name)
    async with upstream(cut) as response:
        stream = BodyStream(
            response, response.aiter_raw(), log=log, log_url="<url>", label="segment"
        )
        sent = await _run(stream)
    assert sent[1:] and all(m["more_body"] for m in sent[1:])  # never "more_body": False
    assert not stream.completed and response.is_closed
    messages = [r.getMessage() for r in caplog.records]
    assert "segment cut short, RemoteProtocolError from <url>" in messages
    assert "segment ended before completion: <url>" in messages


async def test_a_viewer_leaving_closes_the_upstream_at_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = logging.getLogger("tests.body_stream")
    caplog.set_level(logging.INFO, logger=log.name)
    hung_up = asyncio.Event()
    async with upstream(hang(hung_up)) as response:
        stream = BodyStream(response, response.aiter_raw(), log=log, log_url="<url>")
        sent = await _run(stream, disconnect=asyncio.Event())
        assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
        assert not stream.completed and response.is_closed
        await asyncio.wait_for(hung_up.wait(), 5)  # the upstream saw the connection close
    # ended by the disconnect, not by the upstream's read timeout running out
    assert [r.getMessage() for r in caplog.records] == ["relay ended before completion: <url>"]
