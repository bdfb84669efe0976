"""The POD's tunnel client forwards an endless live body as its bytes arrive: a live fMP4
stream of a small camera (a few KiB a second) must not wait until 64 KiB have accumulated
(it did: the live view through the tunnel came in ~5 s bursts)."""

from __future__ import annotations

import asyncio
import contextlib
import time

from websockets.asyncio.server import ServerConnection, serve

from platebridge.core import tunnel as proto
from platebridge.pod.config import parse_config
from platebridge.pod.tunnel import TunnelClient

PIECE = b"\x00\x00\x04\x00moof" + bytes(1016)  # 1 KiB, like one small fragment


async def live_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A chunked response that sends one small piece and then keeps the body open."""
    with contextlib.suppress(ConnectionError):
        await reader.readline()
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        head = b"HTTP/1.1 200 OK\r\ncontent-type: video/mp4\r\ntransfer-encoding: chunked\r\n\r\n"
        writer.write(head + f"{len(PIECE):x}\r\n".encode() + PIECE + b"\r\n")
        await writer.drain()
        await reader.read()  # open (more would come at the camera's pace) until the client goes
    writer.close()


async def test_live_bytes_are_forwarded_before_the_frame_is_full() -> None:
    local = await asyncio.start_server(live_body, "127.0.0.1", 0)
    conns: asyncio.Queue[ServerConnection] = asyncio.Queue()

    async def portal(ws: ServerConnection) -> None:
        hello = proto.Hello(v=1, window=1024 * 1024, max_streams=8, max_data=proto.MAX_DATA)
        await ws.send(proto.encode_control(proto.FrameType.HELLO, 0, hello))
        await conns.put(ws)
        await ws.wait_closed()

    async with serve(portal, "127.0.0.1", 0, compression=None) as ws_server:
        config = parse_config(
            {
                "pod_id": "pod-1",
                "portal_url": f"http://127.0.0.1:{next(iter(ws_server.sockets)).getsockname()[1]}",
                "api_key": "pbk_test",
                "stream_token_secret": "s" * 32,
                "camera_id": "cam",
                "camera_rtsp_url": "rtsp://127.0.0.1:1/x",
                "listen_host": "127.0.0.1",
                "listen_port": local.sockets[0].getsockname()[1],
                "tunnel": True,
            }
        )
        client = TunnelClient(config)
        task = asyncio.create_task(client.run())
        try:
            ws = await asyncio.wait_for(conns.get(), 10)
            head = proto.RequestHead(method="GET", path="/live/cam", query="token=t")
            started = time.monotonic()
            await ws.send(proto.encode_control(proto.FrameType.REQUEST, 1, head))
            data = b""
            while len(data) < len(PIECE):
                frame = proto.decode(await asyncio.wait_for(ws.recv(), 5))
                if frame.stream_id == 1 and frame.kind is proto.FrameType.DATA:
                    data += frame.payload
            assert data == PIECE  # the piece arrived while the body is still open
            assert time.monotonic() - started < 5
        finally:
            client.stop()
            await asyncio.wait_for(task, 10)
            local.close()
