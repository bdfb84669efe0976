"""Helpers for the streaming tests: a portal process with stream settings, a scripted fake POD,
a POD that hangs, a listener that records connection attempts, heartbeats and viewers.

The fake POD only stands in for a POD that misbehaves (hangs, streams slowly, lets us count its
connections); the happy path runs against the real POD agent (``test_proxy_e2e.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from platebridge.core.tokens import b64url_decode
from tests.portal.relay_upstreams import LoopThread
from tests.support.portal import PortalProc, SeededCompany, cli_json
from tests.support.portal import portal_process as support_portal_process

LOOPBACK_NETWORKS = "127.0.0.0/8"
TS_PACKET = b"\x47" + b"\x00" * 187


def portal_process(
    db_url: str, env: Mapping[str, str] | None = None, *, log_level: str = "warning"
) -> contextlib.AbstractContextManager[PortalProc]:
    """The support portal process with loopback pod networks (the fake PODs listen on
    127.0.0.1), ``env`` on top (e.g. short stream timeouts)."""
    full_env = {"PLATEBRIDGE_POD_NETWORKS": LOOPBACK_NETWORKS, **(env or {})}
    return support_portal_process(db_url, full_env, log_level=log_level)


def heartbeat(
    portal_url: str,
    seeded: SeededCompany,
    ip: str,
    port: int,
    cameras: tuple[str, ...] = ("gate-camera-1",),
) -> None:
    """Register the seeded pod at ``ip:port`` with ``cameras`` (as its POD would)."""
    r = httpx.post(
        f"{portal_url}/api/pod/heartbeat",
        headers=seeded.pod_auth,
        json={
            "pod_id": seeded.pod_id,
            "ip_address": ip,
            "stream_port": port,
            "status": "online",
            "cameras": [{"camera_id": c, "name": c.title()} for c in cameras],
        },
        timeout=10,
    )
    assert r.status_code == 200, r.text


def add_viewer(db_url: str, seeded: SeededCompany) -> tuple[str, str]:
    """A viewer-role user in the seeded company; returns (email, password)."""
    email = f"viewer-{uuid.uuid4().hex[:8]}@example.test"
    password = f"pw-{uuid.uuid4().hex[:12]}"
    cli_json(
        db_url, "user", "create", "--company", seeded.company_id, "--email", email,
        "--password", password, "--role", "viewer",
    )  # fmt: skip
    return email, password


def stream_token(
    portal_url: str, auth: Mapping[str, str], pod_id: str, camera_id: str
) -> httpx.Response:
    return httpx.post(
        f"{portal_url}/api/pod/stream-token",
        headers=dict(auth),
        json={"pod_id": pod_id, "camera_id": camera_id},
        timeout=15,
    )


def playlist_uris(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


# --- a scripted POD -------------------------------------------------------------------------------


@dataclass
class SegmentRecord:
    opened: threading.Event = field(default_factory=threading.Event)
    closed: threading.Event = field(default_factory=threading.Event)
    sent: int = 0


class FakePod:
    """HTTP/1.1 on loopback: ``/stream`` (a live playlist), ``/stream/{cam}/{seg}`` (TS data;
    camera ``slow-cam`` trickles an endless segment), ``/snapshot``. Records every token and
    every open connection."""

    def __init__(self, lt: LoopThread) -> None:
        self._lt = lt
        self.port = 0
        self.tokens: list[str] = []
        self.paths: list[str] = []
        self.open_connections = 0
        self.accepted = 0
        self.slow = SegmentRecord()
        self._server: asyncio.Server | None = None
        lt.run(self._start())

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def close(self) -> None:
        async def stop() -> None:
            if self._server is not None:
                self._server.close()

        self._lt.run(stop())

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self.open_connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                target = head.split(b"\r\n", 1)[0].split(b" ")[1].decode()
                parts = urlsplit(target)
                self.paths.append(parts.path)
                self.tokens.extend(parse_qs(parts.query).get("token", []))
                token = parse_qs(parts.query).get("token", [""])[-1]
                if not await self._route(parts.path, token, reader, writer):
                    return
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            return
        finally:
            self.open_connections -= 1
            writer.close()

    async def _send(self, w: asyncio.StreamWriter, body: bytes, ctype: str) -> bool:
        head = f"HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n"
        w.write(head.encode() + body)
        await w.drain()
        return True

    async def _route(
        self, path: str, token: str, r: asyncio.StreamReader, w: asyncio.StreamWriter
    ) -> bool:
        pieces = path.strip("/").split("/")
        if pieces == ["stream"]:
            camera = json.loads(b64url_decode(token.split(".")[0]))["camera_id"]
            n = int(time.time())
            lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:1"]
            lines.append(f"#EXT-X-MEDIA-SEQUENCE:{n - 2}")
            for seq in range(n - 2, n + 1):
                lines += ["#EXTINF:1.000000,", f"stream/{camera}/seg_{seq}.ts?token=POD-SIDE"]
            return await self._send(w, ("\n".join(lines) + "\n").encode(), "application/x-mpegURL")
        if pieces == ["snapshot"]:
            return await self._send(w, b"\xff\xd8\xff\xe0fake-jpeg\xff\xd9", "image/jpeg")
        if len(pieces) == 3 and pieces[0] == "stream" and pieces[1] == "slow-cam":
            await self._slow_segment(r, w)
            return False
        if len(pieces) == 3 and pieces[0] == "stream":
            return await self._send(w, TS_PACKET * 50, "video/mp2t")
        w.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\n{}")
        await w.drain()
        return True

    async def _slow_segment(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        """An endless segment, 64 KiB every 50 ms, until the portal closes the connection."""
        w.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: video/mp2t\r\nContent-Length: 1000000000\r\n\r\n"
        )
        self.slow.opened.set()
        chunk = TS_PACKET * 348
        try:
            for _ in range(6000):  # bounded: at most ~5 minutes
                w.write(chunk)
                await w.drain()
                self.slow.sent += len(chunk)
                if r.at_eof():
                    break
                await asyncio.sleep(0.05)
        except ConnectionError:
            pass
        finally:
            self.slow.closed.set()


class HangingPod:
    """Accepts connections and never answers (until closed)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])

    def close(self) -> None:
        self.sock.close()


class Witness:
    """A listening socket that is never accepted from: ``attempts()`` says whether anything
    connected (the kernel completes the handshake into the backlog)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.bind((host, port))
        self.sock.listen(16)
        self.sock.setblocking(False)
        self.port = int(self.sock.getsockname()[1])
        self.seen = 0

    def attempts(self) -> int:
        while True:
            try:
                conn, _ = self.sock.accept()
            except BlockingIOError:
                return self.seen
            conn.close()
            self.seen += 1

    def close(self) -> None:
        self.sock.close()


def timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    start = time.monotonic()
    result = fn(*args, **kwargs)
    return result, time.monotonic() - start
