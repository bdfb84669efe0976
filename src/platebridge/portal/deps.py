"""Request dependencies and the secure-by-default guard.

``require_user`` is installed once on the app: every route needs a logged-in user unless its
endpoint is decorated with :func:`public`. Routes read the user with ``CurrentUser``.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from starlette.requests import HTTPConnection
from starlette.responses import Response

from platebridge.portal.credentials import SESSION_COOKIE as SESSION_COOKIE
from platebridge.portal.credentials import bearer_token as bearer_token
from platebridge.portal.credentials import client_ip as client_ip
from platebridge.portal.credentials import session_token as session_token
from platebridge.portal.csrf import UNSAFE_METHODS, session_csrf_token, submitted_csrf
from platebridge.portal.cursor import cursor_key
from platebridge.portal.db import Database
from platebridge.portal.errors import ApiError
from platebridge.portal.markers import csrf_exempt as csrf_exempt
from platebridge.portal.markers import is_csrf_exempt
from platebridge.portal.markers import is_page as is_page
from platebridge.portal.markers import is_public as is_public
from platebridge.portal.markers import is_public_endpoint as is_public_endpoint
from platebridge.portal.markers import page as page
from platebridge.portal.markers import public as public
from platebridge.portal.models import User
from platebridge.portal.services.auth import user_for_token
from platebridge.portal.settings import PortalSettings
from platebridge.portal.streaming.state import StreamingState
from platebridge.portal.throttle import Throttle, app_throttle
from platebridge.portal.tunnel.hub import TunnelHub


def set_session_cookie(response: Response, token: str, settings: PortalSettings) -> None:
    """The login session cookie: HttpOnly (no script reads it), SameSite=Lax, whole site."""
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=settings.session_ttl,
        httponly=True,
        samesite="lax",
        secure=settings.cookie_secure,
        path="/",
    )


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")


class LoginRequired(Exception):
    """A page was requested without a valid session; rendered as a redirect to /login."""


def get_db(request: HTTPConnection) -> Database:
    db: Database = request.app.state.db
    return db


def get_settings(request: HTTPConnection) -> PortalSettings:
    settings: PortalSettings = request.app.state.settings
    return settings


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


async def require_user(request: Request) -> None:
    """App-wide guard: resolve the user for every non-public route or answer 401."""
    if is_public(request):
        return
    token = session_token(request)
    if token is None:
        if is_page(request):
            raise LoginRequired
        raise _unauthorized("login required")
    async with get_db(request).read() as session:
        user = await user_for_token(session, token)
    if user is None:
        if is_page(request):
            raise LoginRequired
        raise _unauthorized("session is invalid or has expired")
    request.state.user = user
    request.state.session_token = token
    await _check_csrf(request, token)


def csrf_token_for(request: Request) -> str:
    """The CSRF token of the current session (for forms and the page's meta tag)."""
    secret: str = request.app.state.secret_key
    return session_csrf_token(secret, request.state.session_token)


async def _check_csrf(request: Request, token: str) -> None:
    """Unsafe requests authenticated by the session cookie must carry the session's CSRF token
    (form field ``csrf_token`` or header ``X-CSRF-Token``). Bearer calls need none."""
    if request.method not in UNSAFE_METHODS or bearer_token(request) is not None:
        return
    if is_csrf_exempt(request):
        return
    expected = session_csrf_token(request.app.state.secret_key, token)
    given = await submitted_csrf(request)
    if not given or not hmac.compare_digest(expected.encode(), given.encode()):
        raise ApiError(403, "csrf_failed", "missing or invalid CSRF token; reload the page")


def current_user(request: Request) -> User:
    user: User | None = getattr(request.state, "user", None)
    if user is None:  # a public route asked for a user: a programming error, refuse safely
        raise _unauthorized("login required")
    return user


# FastAPI runs plain ``def`` dependencies in its thread pool (a thread hop per dependency per
# request, the largest single cost of a heartbeat in bench/heartbeat.py's profile); these async
# twins run inline on the event loop. Those that take an ``HTTPConnection`` serve WebSocket
# routes too (the live view, ``routes/live.py``).
async def _current_user_dep(request: Request) -> User:
    return current_user(request)


async def _db_dep(request: HTTPConnection) -> Database:
    return get_db(request)


async def _settings_dep(request: HTTPConnection) -> PortalSettings:
    return get_settings(request)


async def _streaming_dep(request: HTTPConnection) -> StreamingState:
    state: StreamingState = request.app.state.streaming
    return state


async def _hub_dep(request: Request) -> TunnelHub:
    hub: TunnelHub = request.app.state.tunnel_hub
    return hub


async def _throttle_dep(request: Request) -> Throttle:
    return app_throttle(request.app)


async def _client_ip_dep(request: HTTPConnection) -> str | None:
    return client_ip(request)


async def _session_token_dep(request: HTTPConnection) -> str | None:
    return session_token(request)


CurrentUser = Annotated[User, Depends(_current_user_dep)]
Db = Annotated[Database, Depends(_db_dep)]
Settings = Annotated[PortalSettings, Depends(_settings_dep)]
Streaming = Annotated[StreamingState, Depends(_streaming_dep)]
Hub = Annotated[TunnelHub, Depends(_hub_dep)]
Throttled = Annotated[Throttle, Depends(_throttle_dep)]
ClientIp = Annotated[str | None, Depends(_client_ip_dep)]
#: The login token the request carries (cookie or bearer), unverified; None without one.
SessionToken = Annotated[str | None, Depends(_session_token_dep)]


async def _cursor_key_dep(request: HTTPConnection) -> bytes:
    return cursor_key(request.app.state.secret_key)


#: The key of the listings' page cursors (derived from the portal's secret key).
CursorKey = Annotated[bytes, Depends(_cursor_key_dep)]


def admin_user(request: Request) -> User:
    """The current user if they are an admin of their company; 403 otherwise."""
    user = current_user(request)
    if user.role != "admin":
        raise ApiError(403, "forbidden", "this action needs the company admin role")
    return user


async def _admin_user_dep(request: Request) -> User:
    return admin_user(request)


AdminUser = Annotated[User, Depends(_admin_user_dep)]
