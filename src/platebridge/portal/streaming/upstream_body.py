"""The lean upstream client's responses: the head of a POD's answer and how its body ends.

:func:`read_head` parses the status line and headers (together ≤ 64 KiB and ≤ 100 header
lines) and decides the body's framing; :class:`UpstreamResponse` reads that body — a
``Content-Length``, ``chunked`` (chunk-size lines ≤ 1 KiB), or until the POD closes — and
gives its connection back to the pool (:mod:`.upstream_http`) for reuse only when the body
was read to its end.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Protocol

import httpx

from platebridge.portal.streaming.upstream_conn import UpstreamConn

MAX_HEAD_BYTES = 64 * 1024
MAX_HEADER_LINES = 100
MAX_CHUNK_LINE = 1024
READ_SIZE = 256 * 1024
_STATUS_LINE = re.compile(rb"HTTP/1\.([01]) ([1-9][0-9]{2})(?: [^\r\n]*)?")
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


class Releaser(Protocol):
    """What a response needs of its pool (:class:`.upstream_http.UpstreamPool`)."""

    read_timeout: float

    def release(self, conn: UpstreamConn, *, reuse: bool) -> None: ...


class UpstreamResponse:
    """A POD's answer with its body not yet read (the part of httpx.Response the relay uses)."""

    def __init__(
        self,
        pool: Releaser,
        conn: UpstreamConn,
        status_code: int,
        headers: dict[str, str],
        *,
        length: int | None,
        chunked: bool,
        keep_alive: bool,
    ) -> None:
        self._pool = pool
        self._conn: UpstreamConn | None = conn
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

    async def _read_chunked(self, conn: UpstreamConn, limit: int, seconds: float) -> bytes:
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


async def read_head(pool: Releaser, conn: UpstreamConn) -> UpstreamResponse:
    """Read the status line and headers of the POD's answer on ``conn`` (informational
    answers skipped) and decide how its body ends: ``Content-Length``, ``chunked``, or the
    POD closing."""
    timeout = pool.read_timeout
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
        pool,
        conn,
        status,
        headers,
        length=length,
        chunked=chunked,
        keep_alive=keep_alive,
    )


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
