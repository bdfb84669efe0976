"""Recorded footage through the POD's tunnel client: a scripted portal (real WebSocket on
loopback) asks for ``/recordings/{camera}/media`` and the spans; the POD's own HTTP server (the
real app, uvicorn, a real SQLite index) answers; the footage headers cross the tunnel."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import uvicorn
from websockets.asyncio.server import ServerConnection, serve

from platebridge.core import tunnel as proto
from platebridge.core.fmp4 import split
from platebridge.pod.http import create_app
from platebridge.pod.recording.recorder import Recording
from platebridge.pod.supervisor import CameraState
from platebridge.pod.tunnel import TunnelClient
from tests.pod.test_http_routes import make_config
from tests.pod.test_playback_plan import T0, index_row, recording
from tests.support.builders import CAMERA_ID, footage_token
from tests.support.procs import free_port


@contextlib.asynccontextmanager
async def pod_with_tunnel(tmp: Path) -> AsyncIterator[ServerConnection]:
    """The POD app on a free port with 10 s recorded at T0, and its tunnel client connected."""
    port = free_port()
    config = make_config(
        tmp, recording_dir=str(tmp / "rec"), listen_port=port, tunnel=True, portal_url="http://x"
    )
    rec = Recording(config)
    assert rec.index is not None
    path = tmp / "rec" / "a.mp4"
    path.write_bytes(recording(10, media0=0.0, wall0=T0))
    rec.index.put(index_row(path, T0))
    states = {c.camera_id: CameraState(c.camera_id, c.name) for c in config.cameras}
    app = create_app(config, states, recording=rec)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    conns: asyncio.Queue[ServerConnection] = asyncio.Queue()

    async def portal(ws: ServerConnection) -> None:
        hello = proto.Hello(v=1, window=1024 * 1024, max_streams=8, max_data=proto.MAX_DATA)
        await ws.send(proto.encode_control(proto.FrameType.HELLO, 0, hello))
        await conns.put(ws)
        await ws.wait_closed()

    try:
        while not server.started:
            await asyncio.sleep(0.02)
        async with serve(portal, "127.0.0.1", 0, compression=None) as ws_server:
            ws_port = next(iter(ws_server.sockets)).getsockname()[1]
            tunnel_config = config.model_copy(update={"portal_url": f"http://127.0.0.1:{ws_port}"})
            client = TunnelClient(tunnel_config)
            task = asyncio.create_task(client.run())
            try:
                yield await asyncio.wait_for(conns.get(), 10)
            finally:
                client.stop()
                await asyncio.wait_for(task, 10)
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, 10)
        rec.close()


async def ask(
    ws: Any, sid: int, path: str, query: dict[str, Any]
) -> tuple[int, dict[str, str], bytes]:
    head = proto.RequestHead(method="GET", path=path, query=urlencode(query))
    await ws.send(proto.encode_control(proto.FrameType.REQUEST, sid, head))
    status, headers, body = 0, {}, b""
    while True:
        frame = proto.decode(await asyncio.wait_for(ws.recv(), 10))
        if frame.stream_id != sid:
            continue
        if frame.kind is proto.FrameType.RESPONSE:
            response = frame.control(proto.ResponseHead)
            status, headers = response.status, dict(response.headers)
        elif frame.kind is proto.FrameType.DATA:
            body += frame.payload
        elif frame.kind is proto.FrameType.END:
            return status, headers, body
        else:
            raise AssertionError(f"unexpected {frame.kind}")


async def test_footage_through_the_tunnel(tmp_path: Path) -> None:
    token = footage_token(CAMERA_ID, start=int(T0) - 60, end=int(T0) + 3600)
    async with pod_with_tunnel(tmp_path) as ws:
        base = f"/recordings/{CAMERA_ID}"
        status, headers, body = await ask(
            ws, 1, f"{base}/media", {"token": token, "start": T0 + 3.5, "duration": 2}
        )
        assert status == 200, body
        assert float(headers["x-platebridge-media-start"]) == T0 + 2
        assert float(headers["x-platebridge-media-end"]) == T0 + 6
        assert float(headers["x-platebridge-next"]) == T0 + 6
        assert headers["content-type"] == "video/mp4"
        assert int(headers["content-length"]) == len(body)
        assert split(body).fragments[0].keyframe
        status, _, body = await ask(ws, 3, base, {"token": token, "from": T0, "to": T0 + 60})
        assert status == 200 and b'"kind":"recording"' in body
        status, _, body = await ask(ws, 5, f"{base}/media", {"token": "x.y", "start": T0})
        assert status == 401
