"""A small live source for the browser tests of ``static/live.js``: a real fragmented MP4 made by
ffmpeg (``testsrc``, libx264, one fragment per frame), served in real time over a real WebSocket
(Starlette + uvicorn on loopback) with the viewer protocol of docs/live.md.

It stands where the portal's ``/api/pod/live/`` route will be, so the player is tested on its
own: the page (the portal's real ``player.js``/``live.js``, under the portal's real security
headers) asks ``POST /api/pod/stream-token`` here for a token and a ``live_url``. The source is a
camera clock: a viewer gets the init segment, everything since the last keyframe, then each
fragment when its time comes; ``down()`` ends every viewer with an ``error`` message and refuses
new ones until ``up()``; ``restart()`` sends the ``restarted`` notice (codecs, mime) and the init
segment again, then a timeline from 0, as a camera restart does; ``frozen`` keeps sockets open
but silent.
"""

from __future__ import annotations

import asyncio
import json
import struct
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from platebridge.portal.security_headers import SecurityHeaders
from tests.support.procs import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "src" / "platebridge" / "portal" / "static"
HLS_JS = ROOT / "node_modules" / "hls.js" / "dist" / "hls.min.js"
FPS = 25
GOP = 25
SECONDS = 20  # the clip loops, timestamps keep growing
H265_CODECS = "hvc1.1.6.L120.90"

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>live</title>
<meta name="csrf-token" content="test"><link rel="icon" href="data:,"></head><body>
<div class="player" data-live data-pod="pod-1" data-camera="cam-1">
  <video muted autoplay playsinline aria-label="Live video"></video>
  <p class="player-status" role="status" aria-live="polite">Connecting…</p>
  <p class="player-label" hidden></p>
</div>
<script src="/static/vendor/hls.min.js"></script>
<script src="/static/player.js"></script>
<script src="/static/codecs.js"></script>
<script src="/static/live-mse.js"></script>
<script src="/static/live.js"></script>
</body></html>
"""


def boxes(data: bytes) -> list[tuple[bytes, bytes]]:
    """Top-level ISO-BMFF boxes as (type, whole box)."""
    out: list[tuple[bytes, bytes]] = []
    pos = 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack_from(">I4s", data, pos)
        if size == 1:
            size = struct.unpack_from(">Q", data, pos + 8)[0]
        out.append((kind, data[pos : pos + size]))
        pos += size
    return out


@dataclass
class Clip:
    init: bytes
    frames: list[bytes]
    codecs: str
    frame_ticks: int


def make_clip(tmp: Path, width: int = 320, height: int = 180) -> Clip:
    """Encode the test clip: H.264 High, a keyframe every GOP frames, one moof+mdat per frame."""
    out = tmp / "clip.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
         f"testsrc=size={width}x{height}:rate={FPS}", "-t", str(SECONDS),
         "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-profile:v", "high",
         "-pix_fmt", "yuv420p", "-g", str(GOP), "-keyint_min", str(GOP), "-sc_threshold", "0",
         "-f", "mp4", "-movflags", "empty_moov+default_base_moof+frag_every_frame", str(out)],
        check=True, timeout=120,
    )  # fmt: skip
    parts = boxes(out.read_bytes())
    first = next(i for i, (kind, _) in enumerate(parts) if kind == b"moof")
    init = b"".join(box for _, box in parts[:first])
    frames: list[bytes] = []
    for kind, box in parts[first:]:
        if kind == b"moof":
            frames.append(box)
        elif kind == b"mdat":
            frames[-1] += box
    assert len(frames) == SECONDS * FPS, len(frames)
    avcc = init.index(b"avcC") + 4
    codecs = "avc1." + init[avcc + 1 : avcc + 4].hex()
    return Clip(init, frames, codecs, _tfdt(frames[1]) - _tfdt(frames[0]))


def _tfdt_at(frame: bytes) -> tuple[int, int]:
    pos = frame.index(b"tfdt") - 4  # inside the moof, which comes before its mdat
    return pos, frame[pos + 8]


def _tfdt(frame: bytes) -> int:
    pos, version = _tfdt_at(frame)
    return int(struct.unpack_from(">Q" if version else ">I", frame, pos + 12)[0])


def with_tfdt(frame: bytes, value: int) -> bytes:
    pos, version = _tfdt_at(frame)
    out = bytearray(frame)
    struct.pack_into(">Q" if version else ">I", out, pos + 12, value)
    return bytes(out)


@dataclass
class LiveSource:
    clip: Clip
    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    #: what POST /api/pod/stream-token answers as live_url (None: leave it out)
    live_url: str | None = "/api/pod/live/pod-1?camera_id=cam-1&token={token}"
    codecs: str | None = None  # overrides the clip's codecs in the init message
    seen: list[dict[str, str]] = field(default_factory=list)  # one per socket: query + path
    tokens_issued: int = 0
    started: float = field(default_factory=time.monotonic)
    origin: int = 0  # frame index where the current timeline starts (restart)
    epoch: int = 0  # bumped by restart()
    is_down: bool = False
    #: answer every socket with this error (after the upgrade), as the portal does for a POD
    #: without the live endpoint (``not_found``)
    refuse_with: str | None = None
    frozen: bool = False  # sockets stay open but nothing is sent (a half-open connection)
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def index_now(self) -> int:
        return int((time.monotonic() - self.started) * FPS)

    def timeline_now(self) -> float:
        """Seconds of the current timeline at the camera's clock (the live edge)."""
        return (time.monotonic() - self.started) - self.origin / FPS

    def fragment(self, index: int) -> bytes:
        frame = self.clip.frames[index % len(self.clip.frames)]
        return with_tfdt(frame, (index - self.origin) * self.clip.frame_ticks)

    # -- control from the test thread -------------------------------------------------------
    def down(self) -> None:
        self.is_down = True

    def up(self) -> None:
        self.is_down = False

    def restart(self) -> None:
        now = self.index_now()
        self.origin = now + (-now % GOP)  # the next keyframe starts the new timeline
        self.epoch += 1

    # -- the app ------------------------------------------------------------------------------
    async def _token(self, request: Request) -> Response:
        self.tokens_issued += 1
        token = f"tok-{self.tokens_issued}"
        body: dict[str, Any] = {
            "token": token,
            "expires_in": 60,
            "stream_mode": "proxy",
            "proxy_url": f"/api/pod/proxy-stream/pod-1?camera_id=cam-1&token={token}",
            "direct_url": None,
        }
        if self.live_url is not None:
            body["live_url"] = self.live_url.format(token=token)
        return JSONResponse(body)

    async def _page(self, request: Request) -> Response:
        return HTMLResponse(PAGE)

    async def _hls_js(self, request: Request) -> Response:
        return FileResponse(HLS_JS, media_type="text/javascript")

    async def _live(self, ws: WebSocket) -> None:
        self.seen.append({"path": ws.url.path, **dict(ws.query_params)})
        if self.is_down:
            await ws.close(code=1008)  # before the upgrade: the browser sees a failed handshake
            return
        await ws.accept()
        if self.refuse_with is not None:
            error = {"type": "error", "error": self.refuse_with, "detail": "refused"}
            await ws.send_text(json.dumps(error))
            await ws.close(code=1011)
            return
        try:
            await self._serve(ws)
        except (WebSocketDisconnect, RuntimeError, OSError):
            return

    async def _send_init(self, ws: WebSocket) -> None:
        codecs = self.codecs or self.clip.codecs
        mime = f'video/mp4; codecs="{codecs}"'
        init = {"type": "init", "codecs": codecs, "mime": mime, "camera_id": "cam-1"}
        await ws.send_text(json.dumps(init))
        await ws.send_bytes(self.clip.init)

    async def _serve(self, ws: WebSocket) -> None:
        epoch = self.epoch
        await self._send_init(ws)
        now = self.index_now()
        nxt = max(self.origin, now - (now - self.origin) % GOP)  # the keyframe cache
        while True:
            if self.is_down:
                error = {"type": "error", "error": "upstream_closed", "detail": "stream ended"}
                await ws.send_text(json.dumps(error))
                await ws.close(code=1011)
                return
            if epoch != self.epoch:
                epoch = self.epoch
                codecs = self.codecs or self.clip.codecs
                mime = f'video/mp4; codecs="{codecs}"'
                notice = {"type": "notice", "reason": "restarted", "codecs": codecs, "mime": mime}
                await ws.send_text(json.dumps(notice))
                await ws.send_bytes(self.clip.init)
                nxt = self.origin
            if self.frozen:  # nothing at all, and resume at the live edge
                nxt = self.index_now() + 1
                await asyncio.sleep(1 / FPS)
                continue
            while nxt <= self.index_now() and nxt >= self.origin:
                await ws.send_bytes(self.fragment(nxt))
                nxt += 1
            # at most one frame: down() and restart() are noticed within 40 ms
            due = self.started + nxt / FPS - time.monotonic()
            await asyncio.sleep(min(1 / FPS, max(0.001, due)))

    def __enter__(self) -> LiveSource:
        app = SecurityHeaders(
            Starlette(
                routes=[
                    Route("/", self._page),
                    Route("/static/vendor/hls.min.js", self._hls_js),
                    Route("/api/pod/stream-token", self._token, methods=["POST"]),
                    WebSocketRoute("/api/pod/live/{pod}", self._live),
                    Mount("/static", StaticFiles(directory=STATIC)),
                ]
            )
        )
        config = uvicorn.Config(app, host=self.host, port=self.port, log_level="warning")
        self._server = uvicorn.Server(config)

        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        wait_until(lambda: self._server is not None and self._server.started, timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
