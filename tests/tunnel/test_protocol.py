"""The tunnel's frame protocol (``platebridge.core.tunnel``): encoding, limits, allow-list."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from platebridge.core import tunnel as proto


def test_control_frames_round_trip() -> None:
    head = proto.RequestHead(method="GET", path="/stream", query="token=abc")
    frame = proto.decode(proto.encode_control(proto.FrameType.REQUEST, 7, head))
    assert (frame.kind, frame.stream_id) == (proto.FrameType.REQUEST, 7)
    assert frame.control(proto.RequestHead) == head
    credit = proto.decode(proto.encode_credit(7, 65536))
    assert credit.credit() == 65536


@given(st.binary(max_size=proto.MAX_DATA), st.integers(1, proto.MAX_STREAM_ID))
def test_data_frames_round_trip(payload: bytes, stream_id: int) -> None:
    frame = proto.decode(proto.encode(proto.FrameType.DATA, stream_id, payload))
    assert (frame.kind, frame.stream_id, frame.payload) == (
        proto.FrameType.DATA,
        stream_id,
        payload,
    )


@pytest.mark.parametrize(
    "message",
    [
        "text",  # text messages are not part of the protocol
        b"\x01\x04",  # shorter than the header
        b"\x02\x04\x00\x00\x00\x01",  # unknown version
        b"\x01\x63\x00\x00\x00\x01",  # unknown type
        b"\x01\x04\x00\x00\x00\x00",  # DATA on stream 0
        b"\x01\x01\x00\x00\x00\x01{}",  # HELLO on a stream
        b"\x01\x04\x00\x00\x00\x01" + b"x" * (proto.MAX_DATA + 1),  # too large
    ],
)
def test_bad_frames_are_protocol_errors(message: bytes | str) -> None:
    with pytest.raises(proto.TunnelProtocolError):
        proto.decode(message)


@pytest.mark.parametrize(
    ("model", "payload"),
    [
        (proto.RequestHead, b'{"method":"POST","path":"/stream"}'),  # only GET
        (proto.RequestHead, b'{"method":"GET","path":"/stream","extra":1}'),  # unknown key
        (proto.ResponseHead, b'{"status":99}'),
        (proto.Reset, b"not json"),
    ],
)
def test_bad_control_payloads(model: type[proto.Hello], payload: bytes) -> None:
    frame = proto.Frame(proto.FrameType.REQUEST, 1, payload)
    with pytest.raises(proto.TunnelProtocolError):
        frame.control(model)


def test_credit_must_be_positive_and_bounded() -> None:
    for value in (0, proto.MAX_WINDOW + 1):
        frame = proto.Frame(proto.FrameType.CREDIT, 1, proto.CREDIT.pack(value))
        with pytest.raises(proto.TunnelProtocolError):
            frame.credit()


@pytest.mark.parametrize(
    "path", ["/stream", "/stream/gate-camera-1/seg_17.ts", "/snapshot", "/health"]
)
def test_allowed_paths(path: str) -> None:
    assert proto.allowed_path(path)


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/stream/",
        "/stream/../etc/passwd",
        "/stream/cam/../../x",
        "/stream/cam/seg/extra",
        "/docs",
        "//10.0.0.1/stream",
        "http://10.0.0.1/stream",
        "/stream%2f..",
        "/health?x",
    ],
)
def test_everything_else_is_refused(path: str) -> None:
    assert not proto.allowed_path(path)


def test_queries() -> None:
    assert proto.allowed_query("token=abc.DEF-_~%2B")
    assert not proto.allowed_query("token=a b")
    assert not proto.allowed_query("a=1#frag")
    assert not proto.allowed_query("x" * 5000)


def test_passed_headers_are_filtered() -> None:
    items = [("Content-Type", "video/mp2t"), ("Set-Cookie", "a=b"), ("Server", "x")]
    assert proto.response_headers(items) == [("content-type", "video/mp2t")]


def test_live_bodies_start_with_the_live_window() -> None:
    assert proto.stream_window("/live/gate-camera-1", proto.DEFAULT_WINDOW) == proto.LIVE_WINDOW
    # never less than the connection's window, and only for the live body
    assert proto.stream_window("/live/cam", proto.MAX_WINDOW) == proto.MAX_WINDOW
    for path in ("/stream", "/stream/cam/seg_1.ts", "/live/cam/ws", "/health", "/live/"):
        assert proto.stream_window(path, proto.DEFAULT_WINDOW) == proto.DEFAULT_WINDOW
    assert proto.LIVE_WINDOW <= proto.MAX_WINDOW  # one CREDIT increment may carry it
