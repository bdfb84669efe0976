"""What a heartbeat says: its body parsed (JSON whatever the Content-Type — the spec's curl
sends it form-encoded —, ``#`` comments tolerated as in the spec's example, validated into the
wire model), its digest (the fast path's "nothing changed" test) and the values the portal
stores of it (stream URL, RTSP URL without credentials, media/recording JSON).
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import json
import re
from typing import Any

from platebridge.core.heartbeat import (
    CameraMedia,
    CameraRecording,
    HeartbeatCamera,
    HeartbeatRequest,
)
from platebridge.core.redact import redact_text, strip_credentials
from platebridge.portal import json_body
from platebridge.portal.errors import ApiError

MAX_BODY_BYTES = 64 * 1024

# A string (to its closing quote, or to the end when it has none) or a comment. Possessive
# and always matching at a quote, so the scan is linear: the old pattern retried every later
# quote of an unterminated string (40 KB of \" took 18 s of CPU on the event loop).
_COMMENT = re.compile(rb'"(?:[^"\\]++|\\.)*+(?:"|\\?\Z)|#[^\n]*', re.DOTALL)


def strip_hash_comments(body: bytes) -> bytes:
    """Remove ``# …`` line comments outside strings (the spec's example carries one)."""
    return _COMMENT.sub(lambda m: m.group(0) if m.group(0).startswith(b'"') else b"", body)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _loads(body: bytes) -> Any:
    # Decoded here: json.loads would guess UTF-16/32 from the bytes.
    return json.loads(body.decode("utf-8"), parse_constant=_no_constant)


def parse_json_body(body: bytes) -> Any:
    """Parse JSON regardless of Content-Type (the spec's curl sends form-encoded headers);
    tolerate ``#`` comments as in the spec's payload. Raises 422 (``validation_error``, or
    ``invalid_json`` from :func:`json_body.check`, which screens every text handed to the
    parser: the body, then the body without its comments, as a comment can hide brackets)."""
    json_body.check(body)
    try:
        return _loads(body)
    except (ValueError, RecursionError):  # RecursionError: unreachable after the screen
        pass
    if b"#" in body:
        stripped = strip_hash_comments(body)
        json_body.check(stripped)
        try:
            return _loads(stripped)
        except (ValueError, RecursionError):
            pass
    raise ApiError(422, "validation_error", "request body is not valid JSON")


def parse_heartbeat(body: bytes) -> HeartbeatRequest:
    """Validate the heartbeat (raises ``ApiError`` or pydantic ``ValidationError``)."""
    data = parse_json_body(body)
    if not isinstance(data, dict):
        raise ApiError(422, "validation_error", "request body must be a JSON object")
    return HeartbeatRequest.model_validate(data)


def stream_url(ip: str, port: int) -> str:
    """``http://{ip}:{port}/stream`` as in the spec (IPv6 bracketed). Plain HTTP: the POD
    serves HTTP unless TLS is put in front of it."""
    host = f"[{ip}]" if ipaddress.ip_address(ip).version == 6 else ip
    return f"http://{host}:{port}/stream"


@functools.lru_cache(maxsize=16384)
def stored_rtsp_url(url: str | None) -> str | None:
    """What the portal keeps of a camera's RTSP URL: no user/password, no secret parameters.
    (Cached: the same URLs come back with every heartbeat.)"""
    return None if url is None else redact_text(strip_credentials(url))


#: How many bodies :class:`SeenBodies` keeps (≈ 300 bytes each: 19 MB when full, tracemalloc).
SEEN_BODIES = 65_536


class SeenBodies:
    """Heartbeat bodies validated before: ``sha256(body)`` → ``(pod_id, digest)``.

    A POD sends the same bytes every beat while nothing changes (``pod.heartbeat.build_payload``
    rounds what it measures), and validating the same bytes gives the same answer: the fast
    path needs neither the parser nor the digest for them (on an unchanged heartbeat those were
    a quarter of the portal's CPU, bench/heartbeat_asgi.py). Only a function of the bytes is
    kept, nothing of the key: the fast statement still checks key, pod and digest, and a body
    it refuses is parsed in full. Bounded: the oldest entry goes first.
    """

    def __init__(self, size: int = SEEN_BODIES) -> None:
        self._size = size
        self._seen: dict[bytes, tuple[str, bytes]] = {}

    @staticmethod
    def key(body: bytes) -> bytes:
        return hashlib.sha256(body).digest()

    def get(self, key: bytes) -> tuple[str, bytes] | None:
        return self._seen.get(key)

    def add(self, key: bytes, pod_id: str, digest: bytes) -> None:
        if key not in self._seen and len(self._seen) >= self._size:
            del self._seen[next(iter(self._seen))]
        self._seen[key] = (pod_id, digest)

    def __len__(self) -> int:
        return len(self._seen)


def heartbeat_digest(req: HeartbeatRequest) -> bytes | None:
    """Digest of everything the heartbeat would write besides the timestamp, or None when the
    heartbeat leaves something to the stored state (no ip or no camera list)."""
    if req.ip_address is None or req.cameras is None:
        return None
    doc = {
        "ip": req.ip_address,
        "port": req.stream_port,
        "status": req.status,
        "fw": req.firmware_version,
        "disk": None if req.disk is None else req.disk.model_dump(),
        "cameras": [_camera_doc(c) for c in sorted(req.cameras, key=lambda c: c.camera_id)],
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).digest()


def _camera_doc(cam: HeartbeatCamera) -> dict[str, Any]:
    return {
        "id": cam.camera_id,
        "name": cam.name,
        "position": cam.position,
        "status": cam.status,
        "error": cam.error,
        "rtsp": stored_rtsp_url(cam.rtsp_url),
        "media": media_json(cam.media),
        "sub_media": media_json(cam.sub_media),
        "recording": media_json(cam.recording),
    }


def media_json(media: CameraMedia | CameraRecording | None) -> str | None:
    """What ``cameras.media`` / ``sub_media`` keep: compact JSON of the validated model (the
    POD rounds its measured values, so an unchanged camera gives the same text every beat)."""
    return None if media is None else media.model_dump_json(exclude_none=True)
