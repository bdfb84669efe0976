"""Stream tokens: ``payload_b64.signature`` as in the spec's "Token-Based Security".

The payload is compact JSON ``{"user_id", "pod_id", "camera_id", "exp"}`` (plus an optional
``iat``) encoded as unpadded base64url; the signature is the unpadded base64url HMAC-SHA256 of
the *encoded payload text*, keyed with the pod's stream secret. Verification never raises
anything but :class:`TokenError`, whatever bytes it is handed.

A **footage token** (recorded video, issue 13) adds ``"scope": "footage", "from", "to"``: the
epoch seconds of the range it may watch (``from < to``). A live token has none of these keys
(so every live token signed before them is unchanged); the verifier (the POD) checks the scope
per path and the range per request — see docs/tokens.md.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass
from typing import Any, Literal

MAX_TOKEN_LENGTH = 2048
MAX_CLAIM_LENGTH = 128
#: Tolerated clock difference between portal and POD, in seconds, for ``iat``.
DEFAULT_LEEWAY = 30

_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")

Scope = Literal["live", "footage"]
SCOPES: tuple[Scope, ...] = ("live", "footage")


class TokenError(Exception):
    """A token was rejected. ``reason`` is a short machine-readable code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True, slots=True)
class StreamClaims:
    user_id: str
    pod_id: str
    camera_id: str
    exp: int
    iat: int | None = None
    #: ``live`` (the default: HLS, /live, /snapshot) or ``footage`` (the recording paths).
    scope: Scope = "live"
    #: Footage tokens only: the range ``[start, end]`` (epoch s; JSON ``from`` / ``to``).
    start: int | None = None
    end: int | None = None

    def __post_init__(self) -> None:
        if self.scope == "footage":
            if self.start is None or self.end is None or not self.start < self.end:
                raise ValueError("a footage token needs start < end")
        elif self.scope != "live" or self.start is not None or self.end is not None:
            raise ValueError("a live token has no range")

    def to_payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "user_id": self.user_id,
            "pod_id": self.pod_id,
            "camera_id": self.camera_id,
            "exp": self.exp,
        }
        if self.iat is not None:
            payload["iat"] = self.iat
        if self.scope == "footage":
            payload |= {"scope": "footage", "from": self.start, "to": self.end}
        return payload

    def covers(self, start: float, end: float) -> bool:
        """True when ``[start, end]`` lies within a footage token's range."""
        return (
            self.start is not None
            and self.end is not None
            and self.start <= start <= end <= self.end
        )


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode unpadded base64url strictly; raises ``ValueError`` on anything else."""
    if len(text) % 4 == 1 or "=" in text:
        raise ValueError("not unpadded base64url")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except binascii.Error as exc:
        raise ValueError("not base64url") from exc


def _key(secret: str | bytes) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else secret


def _signature(payload_b64: str, secret: str | bytes) -> str:
    mac = hmac.new(_key(secret), payload_b64.encode("ascii"), hashlib.sha256)
    return b64url_encode(mac.digest())


def sign_stream_token(claims: StreamClaims, secret: str | bytes) -> str:
    if not _key(secret):
        raise ValueError("stream secret must not be empty")
    body = json.dumps(claims.to_payload(), separators=(",", ":"), ensure_ascii=True)
    payload_b64 = b64url_encode(body.encode("utf-8"))
    return f"{payload_b64}.{_signature(payload_b64, secret)}"


def _claim_str(payload: dict[str, Any], name: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value or len(value) > MAX_CLAIM_LENGTH:
        raise TokenError("malformed", f"token claim {name!r} is missing or invalid")
    return value


def _claim_int(payload: dict[str, Any], name: str, *, required: bool) -> int | None:
    value = payload.get(name)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**53:
        raise TokenError("malformed", f"token claim {name!r} is missing or invalid")
    return value


def _claim_scope(payload: dict[str, Any]) -> tuple[Scope, int | None, int | None]:
    """``scope`` absent (or ``"live"``): no range allowed; ``"footage"``: ``from < to``."""
    scope = payload.get("scope", "live")
    if scope == "live":
        if "from" in payload or "to" in payload:
            raise TokenError("malformed", "a live stream token carries no time range")
        return "live", None, None
    if scope != "footage":
        raise TokenError("malformed", "token claim 'scope' is invalid")
    start = _claim_int(payload, "from", required=True)
    end = _claim_int(payload, "to", required=True)
    if start is None or end is None or not start < end:
        raise TokenError("malformed", "footage token range is empty or reversed")
    return "footage", start, end


def verify_stream_token(
    token: object,
    secret: str | bytes,
    *,
    now: float | None = None,
    leeway: int = DEFAULT_LEEWAY,
) -> StreamClaims:
    """Return the token's claims, or raise :class:`TokenError` saying why it is refused."""
    if not isinstance(token, str) or not token:
        raise TokenError("missing", "stream token is missing")
    if len(token) > MAX_TOKEN_LENGTH:
        raise TokenError("malformed", "stream token is too long")
    if not _TOKEN_SHAPE.fullmatch(token):
        raise TokenError("malformed", "stream token is not of the form payload.signature")
    if not _key(secret):
        raise TokenError("bad_signature", "no stream secret is configured")
    payload_b64, signature = token.split(".")
    expected = _signature(payload_b64, secret)
    if not hmac.compare_digest(expected.encode("ascii"), signature.encode("ascii")):
        raise TokenError("bad_signature", "stream token signature does not match")
    try:
        payload = json.loads(b64url_decode(payload_b64).decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # "[[[…" nests too deep
        raise TokenError("malformed", "stream token payload is not base64url JSON") from exc
    if not isinstance(payload, dict):
        raise TokenError("malformed", "stream token payload is not a JSON object")
    scope, start, end = _claim_scope(payload)
    claims = StreamClaims(
        user_id=_claim_str(payload, "user_id"),
        pod_id=_claim_str(payload, "pod_id"),
        camera_id=_claim_str(payload, "camera_id"),
        exp=_claim_int(payload, "exp", required=True) or 0,
        iat=_claim_int(payload, "iat", required=False),
        scope=scope,
        start=start,
        end=end,
    )
    current = time.time() if now is None else now
    if claims.exp <= current:
        raise TokenError("expired", "stream token has expired")
    if claims.iat is not None and claims.iat > current + leeway:
        raise TokenError("not_yet_valid", "stream token is issued in the future")
    return claims
