"""The heartbeat's body: JSON whatever the Content-Type (the spec's curl sends it
form-encoded), ``#`` comments tolerated as in the spec's example, validated into the wire model.
"""

from __future__ import annotations

import json
import re
from typing import Any

from platebridge.core.heartbeat import HeartbeatRequest
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
