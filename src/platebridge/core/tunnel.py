"""The tunnel's wire protocol (Method 4): HTTP requests multiplexed over one WebSocket.

The POD dials out to ``/api/pod/tunnel``; the portal sends requests down that connection and
the POD answers them from its own local HTTP server. Every WebSocket message is one *binary*
frame::

    byte 0      protocol version (1)
    byte 1      frame type (:class:`FrameType`)
    bytes 2..5  stream id, unsigned big-endian (0 = the connection itself)
    bytes 6..   payload

Control payloads (``HELLO``, ``REQUEST``, ``RESPONSE``, ``RESET``) are small JSON objects
validated with the models below; ``DATA`` carries raw body bytes; ``CREDIT`` a 4-byte
unsigned increment; ``END`` and ``CANCEL`` nothing.

One request = one stream (ids chosen by the portal, odd, increasing)::

    portal → POD   REQUEST {method, path, query}
    POD → portal   RESPONSE {status, headers}, DATA…, END      (or RESET {error, detail})
    portal → POD   CREDIT n …                                 (as the viewer consumes data)
    portal → POD   CANCEL                                     (viewer left: stop sending)

**Flow control.** Each stream starts with ``window`` bytes of credit (from ``HELLO``); the POD
sends DATA only within its credit and the portal grants more as the viewer consumes. A live
body gets :data:`LIVE_WINDOW` (the portal sends the difference as a ``CREDIT`` right after the
``REQUEST``). The portal
therefore reads the WebSocket continuously (it never has more than ``window`` bytes buffered per
stream), so one slow viewer of a large segment never blocks another stream's playlist on the
same connection. A POD that exceeds its credit breaks the protocol and is disconnected.

**What can be asked.** Only ``GET`` of the POD's own stream endpoints (:func:`allowed_path`):
``/stream``, ``/stream/{camera}/{segment}``, ``/live/{camera}`` (the live fMP4 body, not its
WebSocket), ``/snapshot``, ``/health`` and the recorded-footage paths ``/recordings/{camera}``
(``…/media``, ``…/export``, ``…/vod.m3u8``). The POD enforces this itself, so even a compromised
portal cannot use a tunnel to reach the POD's LAN.
"""

from __future__ import annotations

import enum
import json
import re
import struct
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

VERSION = 1
TUNNEL_PATH = "/api/pod/tunnel"
HEADER = struct.Struct(">BBI")
CREDIT = struct.Struct(">I")

#: Largest DATA payload; bodies are cut into chunks of at most this size.
MAX_DATA = 64 * 1024
#: Largest JSON control payload.
MAX_CONTROL = 8 * 1024
#: Largest WebSocket message either side accepts.
MAX_MESSAGE = HEADER.size + MAX_DATA
DEFAULT_WINDOW = 256 * 1024
MAX_WINDOW = 16 * 1024 * 1024
#: Credit of an endless live body (``/live/{camera}``): the portal grants it up to this at the
#: start, so a new viewer's keyframe cache (up to ``core.live.DEFAULT_CACHE_LIMIT``, ~5 MB for
#: a 10 s GOP at 4 Mbit/s) crosses at once instead of in ``window``-sized round trips. It costs
#: no memory in practice: the portal's fan-out reads a live body as fast as it arrives.
LIVE_WINDOW = 12 * 1024 * 1024
DEFAULT_MAX_STREAMS = 64
MAX_STREAM_ID = 2**32 - 1

#: WebSocket close codes the portal uses (4000-4999 are for applications).
CLOSE_REPLACED = 4000  # a newer tunnel of the same pod took over
CLOSE_PROTOCOL = 4002  # the peer broke the protocol
CLOSE_SHUTDOWN = 1001  # the portal process is going away

#: Response headers that cross the tunnel (everything else is dropped).
PASSED_HEADERS = frozenset(
    {"content-type", "content-length", "content-encoding", "cache-control", "retry-after"}
    # recorded footage: where a /media body sits on the wall clock, an export's file name
    | {"content-disposition", "x-platebridge-media-start", "x-platebridge-media-end"}
    | {"x-platebridge-next", "x-platebridge-live-edge"}
)

_CAMERA = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
_SEGMENT = r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}"
_ALLOWED_PATHS = (
    re.compile(r"/stream"),
    re.compile(rf"/stream/{_CAMERA}/{_SEGMENT}"),
    re.compile(r"/snapshot"),
    re.compile(r"/health"),
    re.compile(rf"/recordings/{_CAMERA}"),  # recorded footage (issue 13): spans,
    re.compile(rf"/recordings/{_CAMERA}/media"),  # fMP4 from a time,
    re.compile(rf"/recordings/{_CAMERA}/export"),  # one MP4 of a range,
    re.compile(rf"/recordings/{_CAMERA}/vod\.m3u8"),  # the HLS VOD playlist
    re.compile(rf"/live/{_CAMERA}"),  # the live fMP4 body (never /live/{camera}/ws)
)
_LIVE = _ALLOWED_PATHS[-1]
_QUERY = re.compile(r"[A-Za-z0-9._~%&=+-]*")


class FrameType(enum.IntEnum):
    HELLO = 1
    REQUEST = 2
    RESPONSE = 3
    DATA = 4
    END = 5
    CANCEL = 6
    CREDIT = 7
    RESET = 8


class TunnelProtocolError(Exception):
    """A frame that breaks the protocol: the connection must be closed (``CLOSE_PROTOCOL``)."""


def allowed_path(path: str) -> bool:
    """True for the POD endpoints a tunnel may request; ``..`` can never match."""
    if ".." in path:
        return False
    return any(p.fullmatch(path) for p in _ALLOWED_PATHS)


def stream_window(path: str, window: int) -> int:
    """The credit a stream for ``path`` gets at its start: ``window``, or :data:`LIVE_WINDOW`
    for a live body. (The POD needs no change: the extra arrives as an ordinary ``CREDIT``.)"""
    return max(window, LIVE_WINDOW) if _LIVE.fullmatch(path) else window


def allowed_query(query: str) -> bool:
    """Plain ``k=v&…`` with percent-encoding only (no spaces, no fragments, no raw unicode)."""
    return len(query) <= 4096 and _QUERY.fullmatch(query) is not None


class _Control(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class Hello(_Control):
    """portal → POD right after the upgrade: the limits of this connection."""

    v: int = Field(ge=1, le=255, description="Protocol version the portal speaks.")
    window: int = Field(ge=MAX_DATA, le=MAX_WINDOW, description="Initial credit per stream.")
    max_streams: int = Field(ge=1, le=1024, description="Concurrent streams the portal opens.")
    max_data: int = Field(ge=1024, le=MAX_DATA, description="Largest DATA payload.")


class RequestHead(_Control):
    """portal → POD: which local resource to fetch."""

    method: Literal["GET"] = Field(description="Only GET is ever relayed.")
    path: Annotated[str, StringConstraints(min_length=1, max_length=256)] = Field(
        description="One of the allow-listed POD paths."
    )
    query: Annotated[str, StringConstraints(max_length=4096)] = Field(
        default="", description="Raw query string (carries the portal's POD token)."
    )


class ResponseHead(_Control):
    """POD → portal: status and the passed-through headers of the local answer."""

    status: int = Field(ge=100, le=599)
    headers: list[tuple[str, str]] = Field(default_factory=list, max_length=16)


class Reset(_Control):
    """POD → portal: the stream failed (``unreachable``, ``timeout``, ``busy``, ``error``)."""

    error: Annotated[str, StringConstraints(max_length=32)]
    detail: Annotated[str, StringConstraints(max_length=200)] = ""


M = TypeVar("M", bound=_Control)


@dataclass(frozen=True, slots=True)
class Frame:
    kind: FrameType
    stream_id: int
    payload: bytes

    def control(self, model: type[M]) -> M:
        """Parse the JSON payload as ``model`` or raise :class:`TunnelProtocolError`."""
        if len(self.payload) > MAX_CONTROL:
            raise TunnelProtocolError(f"{self.kind.name} payload too large")
        try:
            data: Any = json.loads(self.payload)
            return model.model_validate(data)
        except (ValueError, ValidationError, UnicodeDecodeError):
            raise TunnelProtocolError(f"invalid {self.kind.name} payload") from None

    def credit(self) -> int:
        if len(self.payload) != CREDIT.size:
            raise TunnelProtocolError("invalid CREDIT payload")
        value: int = CREDIT.unpack(self.payload)[0]
        if value == 0 or value > MAX_WINDOW:
            raise TunnelProtocolError("invalid CREDIT increment")
        return value


def encode(frame_type: FrameType, stream_id: int, payload: bytes = b"") -> bytes:
    if not 0 <= stream_id <= MAX_STREAM_ID:
        raise ValueError("stream id out of range")
    if len(payload) > MAX_DATA:
        raise ValueError("payload too large")
    return HEADER.pack(VERSION, frame_type, stream_id) + payload


def encode_control(frame_type: FrameType, stream_id: int, model: _Control) -> bytes:
    payload = model.model_dump_json().encode()
    if len(payload) > MAX_CONTROL:
        raise ValueError("control payload too large")
    return encode(frame_type, stream_id, payload)


def encode_credit(stream_id: int, increment: int) -> bytes:
    return encode(FrameType.CREDIT, stream_id, CREDIT.pack(increment))


def decode(message: bytes | str) -> Frame:
    """One WebSocket message → :class:`Frame`, or :class:`TunnelProtocolError`."""
    if not isinstance(message, bytes | bytearray | memoryview):
        raise TunnelProtocolError("text messages are not part of the protocol")
    data = bytes(message)
    if len(data) < HEADER.size:
        raise TunnelProtocolError("frame shorter than its header")
    if len(data) > MAX_MESSAGE:
        raise TunnelProtocolError("frame too large")
    version, kind, stream_id = HEADER.unpack_from(data)
    if version != VERSION:
        raise TunnelProtocolError(f"unsupported protocol version {version}")
    try:
        frame_type = FrameType(kind)
    except ValueError:
        raise TunnelProtocolError(f"unknown frame type {kind}") from None
    if (stream_id == 0) != (frame_type is FrameType.HELLO):
        raise TunnelProtocolError("stream id 0 is for HELLO only")
    return Frame(frame_type, stream_id, data[HEADER.size :])


def response_headers(items: Any) -> list[tuple[str, str]]:
    """The passed-through subset of ``items`` (``(name, value)`` pairs), names lower-cased."""
    out: list[tuple[str, str]] = []
    for name, value in items:
        key = str(name).lower()
        if key in PASSED_HEADERS and len(value) <= 256:
            out.append((key, str(value)))
    return out[:16]
