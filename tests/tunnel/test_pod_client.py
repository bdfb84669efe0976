"""The POD's tunnel client against a scripted portal (a real WebSocket server on loopback) and
a real local HTTP server: the allow-list is enforced on the POD, credit bounds what is sent."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from websockets.asyncio.server import ServerConnection, serve

from platebridge.core import tunnel as proto
from platebridge.pod.config import parse_config
from platebridge.pod.tunnel import TunnelClient

BODY = bytes(range(256)) * 800  # 200 KiB


class LocalServer:
    """A minimal HTTP/1.1 server: records every path asked for, answers BODY."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while line := await reader.readline():
                self.paths.append(line.decode().split(" ")[1])
                while (await reader.readline()) not in (b"\r\n", b""):
                    pass
                head = f"HTTP/1.1 200 OK\r\ncontent-type: video/mp2t\r\ncontent-length: {len(BODY)}"
                writer.write(head.encode() + b"\r\n\r\n" + BODY)
                await writer.drain()
        writer.close()


@contextlib.asynccontextmanager
async def world(window: int = 64 * 1024) -> AsyncIterator[tuple[Any, LocalServer, TunnelClient]]:
    local = LocalServer()
    server = await asyncio.start_server(local.handle, "127.0.0.1", 0)
    local.port = server.sockets[0].getsockname()[1]
    conns: asyncio.Queue[ServerConnection] = asyncio.Queue()

    async def portal(ws: ServerConnection) -> None:
        hello = proto.Hello(v=1, window=window, max_streams=8, max_data=proto.MAX_DATA)
        await ws.send(proto.encode_control(proto.FrameType.HELLO, 0, hello))
        await conns.put(ws)
        await ws.wait_closed()

    async with serve(portal, "127.0.0.1", 0, compression=None) as ws_server:
        ws_port = next(iter(ws_server.sockets)).getsockname()[1]
        config = parse_config(
            {
                "pod_id": "pod-1",
                "portal_url": f"http://127.0.0.1:{ws_port}",
                "api_key": "pbk_test",
                "stream_token_secret": "s" * 32,
                "camera_id": "cam",
                "camera_rtsp_url": "rtsp://127.0.0.1:1/x",
                "listen_host": "127.0.0.1",
                "listen_port": local.port,
                "tunnel": True,
            }
        )
        client = TunnelClient(config)
        task = asyncio.create_task(client.run())
        try:
            ws = await asyncio.wait_for(conns.get(), 10)
            yield ws, local, client
        finally:
            client.stop()
            await asyncio.wait_for(task, 10)
            server.close()


async def frames_for(ws: Any, sid: int, until: proto.FrameType) -> list[proto.Frame]:
    out = []
    while True:
        frame = proto.decode(await asyncio.wait_for(ws.recv(), 5))
        if frame.stream_id == sid:
            out.append(frame)
            if frame.kind is until:
                return out


async def test_refuses_everything_but_the_stream_endpoints() -> None:
    async with world() as (ws, local, _client):
        bad = ["/admin", "/stream/../etc/passwd", "/stream/cam/seg/x", "/", "/health/x"]
        for sid, path in enumerate(bad, start=1):
            head = proto.RequestHead(method="GET", path=path)
            await ws.send(proto.encode_control(proto.FrameType.REQUEST, sid, head))
            frames = await frames_for(ws, sid, proto.FrameType.END)
            assert frames[0].control(proto.ResponseHead).status == 403
        head = proto.RequestHead(method="GET", path="/health", query="a=1")
        await ws.send(proto.encode_control(proto.FrameType.REQUEST, 99, head))
        await ws.send(proto.encode_credit(99, 1024 * 1024))
        frames = await frames_for(ws, 99, proto.FrameType.END)
        assert frames[0].control(proto.ResponseHead).status == 200
        assert local.paths == ["/health?a=1"]  # nothing else ever reached the POD's server


async def test_sends_only_within_credit_and_cancel_stops() -> None:
    async with world(window=64 * 1024) as (ws, _local, client):
        head = proto.RequestHead(method="GET", path="/stream/cam/seg_1.ts", query="token=t")
        await ws.send(proto.encode_control(proto.FrameType.REQUEST, 1, head))
        received = 0
        with contextlib.suppress(TimeoutError):
            while True:
                frame = proto.decode(await asyncio.wait_for(ws.recv(), 0.5))
                if frame.kind is proto.FrameType.DATA:
                    received += len(frame.payload)
        assert received == 64 * 1024  # exactly the window, then it waits
        await ws.send(proto.encode_credit(1, 32 * 1024))
        more = proto.decode(await asyncio.wait_for(ws.recv(), 5))
        assert more.kind is proto.FrameType.DATA and len(more.payload) == 32 * 1024
        await ws.send(proto.encode(proto.FrameType.CANCEL, 1))
        for _ in range(50):
            if client.active_streams == 0:
                break
            await asyncio.sleep(0.05)
        assert client.active_streams == 0
