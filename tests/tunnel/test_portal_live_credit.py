"""The portal's end of a tunnel gives a live body (``/live/{camera}``) the live window at once:
the POD may send a whole keyframe cache (MiBs) before the viewer has read a byte, where any
other stream stays within the connection's window (docs/tunnel.md, "Endless bodies")."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from platebridge.core import tunnel as proto
from platebridge.portal.tunnel.connection import TunnelConnection

WINDOW = proto.DEFAULT_WINDOW


def connection() -> TunnelConnection:
    socket: Any = object()  # never used: frames are dispatched and the outbox read directly
    return TunnelConnection(socket, uuid.uuid4(), "pod-1", window=WINDOW)


def sent(conn: TunnelConnection) -> list[proto.Frame]:
    out = []
    while not conn._outbox.empty():
        data = conn._outbox.get_nowait()
        assert data is not None
        out.append(proto.decode(data))
    return out


def respond(conn: TunnelConnection, sid: int, total: int) -> None:
    head = proto.ResponseHead(status=200, headers=[("content-type", "video/mp4")])
    conn._dispatch(proto.decode(proto.encode_control(proto.FrameType.RESPONSE, sid, head)))
    chunk = bytes(proto.MAX_DATA)
    for _ in range(total // proto.MAX_DATA):
        conn._dispatch(proto.decode(proto.encode(proto.FrameType.DATA, sid, chunk)))


async def test_live_body_gets_the_live_window_right_after_its_request() -> None:
    conn = connection()
    stream = conn.open("/live/gate-camera-1", "token=t")
    request, credit = sent(conn)
    assert request.kind is proto.FrameType.REQUEST and request.stream_id == stream.stream_id
    assert credit.kind is proto.FrameType.CREDIT and credit.stream_id == stream.stream_id
    assert WINDOW + credit.credit() == proto.LIVE_WINDOW == stream.window
    respond(conn, stream.stream_id, 8 * 1024 * 1024)  # a 10 s GOP's cache, nothing read yet
    assert stream.buffered == 8 * 1024 * 1024
    assert await stream.read() == bytes(proto.MAX_DATA)  # reading grants credit back as before
    assert [f.kind for f in sent(conn)] == [proto.FrameType.CREDIT]


@pytest.mark.parametrize("path", ["/stream", "/stream/gate-camera-1/seg_1.ts", "/health"])
async def test_other_streams_keep_the_connection_window(path: str) -> None:
    conn = connection()
    stream = conn.open(path, "")
    assert [f.kind for f in sent(conn)] == [proto.FrameType.REQUEST]
    assert stream.window == WINDOW
    respond(conn, stream.stream_id, WINDOW)  # exactly the window: fine
    with pytest.raises(proto.TunnelProtocolError, match="beyond the granted credit"):
        respond(conn, stream.stream_id, proto.MAX_DATA)
