"""What a request presents: its bearer token, its login session token, its peer address.

Plain functions of the request with no imports from the rest of the portal, so ``deps`` (which
wraps them in typed aliases: ``SessionToken``, ``ClientIp``) and the lean heartbeat route can
use them without a cycle.
"""

from __future__ import annotations

from starlette.requests import HTTPConnection

SESSION_COOKIE = "pb_session"
_MAX_SESSION_TOKEN = 256


def bearer_token(request: HTTPConnection) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def session_token(request: HTTPConnection) -> str | None:
    """The login token from ``Authorization: Bearer`` or else the ``pb_session`` cookie."""
    token = bearer_token(request) or request.cookies.get(SESSION_COOKIE)
    if not token or len(token) > _MAX_SESSION_TOKEN:
        return None
    return token


def client_ip(request: HTTPConnection) -> str | None:
    """The peer address: uvicorn runs without proxy headers, so it is the TCP peer. The one
    definition used by the throttle, the audit trail and the heartbeat's address fallback."""
    return request.client.host if request.client else None
