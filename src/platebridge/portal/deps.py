"""Request dependencies and the secure-by-default guard.

``require_user`` is installed once on the app: every route needs a logged-in user unless its
endpoint is decorated with :func:`public`. Routes read the user with ``CurrentUser``.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from starlette.responses import Response

from platebridge.portal.db import Database
from platebridge.portal.errors import ApiError
from platebridge.portal.models import User
from platebridge.portal.pages.csrf import UNSAFE_METHODS, session_csrf_token, submitted_csrf
from platebridge.portal.services.auth import user_for_token
from platebridge.portal.settings import PortalSettings

SESSION_COOKIE = "pb_session"


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


_PUBLIC_ATTR = "__platebridge_public__"
_PAGE_ATTR = "__platebridge_page__"
_CSRF_EXEMPT_ATTR = "__platebridge_csrf_exempt__"
F = TypeVar("F", bound=Callable[..., Any])


def public(endpoint: F) -> F:
    """Mark a route endpoint as reachable without a user (heartbeat, login, health)."""
    setattr(endpoint, _PUBLIC_ATTR, True)
    return endpoint


def is_public_endpoint(endpoint: Any) -> bool:
    return bool(getattr(endpoint, _PUBLIC_ATTR, False))


def is_public(request: Request) -> bool:
    route = request.scope.get("route")
    return is_public_endpoint(getattr(route, "endpoint", None))


def page(endpoint: F) -> F:
    """Mark an HTML page: signed-out visitors are redirected to ``/login`` instead of a 401,
    and errors render as a page (see ``pages.errors``)."""
    setattr(endpoint, _PAGE_ATTR, True)
    return endpoint


def is_page(request: Request) -> bool:
    route = request.scope.get("route")
    return bool(getattr(getattr(route, "endpoint", None), _PAGE_ATTR, False))


def csrf_exempt(endpoint: F) -> F:
    """Skip the CSRF check for a cookie-authenticated unsafe request (only ``POST
    /api/auth/logout``: a forged logout merely ends the session)."""
    setattr(endpoint, _CSRF_EXEMPT_ATTR, True)
    return endpoint


def _is_csrf_exempt(request: Request) -> bool:
    route = request.scope.get("route")
    return bool(getattr(getattr(route, "endpoint", None), _CSRF_EXEMPT_ATTR, False))


class LoginRequired(Exception):
    """A page was requested without a valid session; rendered as a redirect to /login."""


def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def get_settings(request: Request) -> PortalSettings:
    settings: PortalSettings = request.app.state.settings
    return settings


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def session_token(request: Request) -> str | None:
    """The login token from ``Authorization: Bearer`` or else the ``pb_session`` cookie."""
    token = bearer_token(request) or request.cookies.get(SESSION_COOKIE)
    if not token or len(token) > 256:
        return None
    return token


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
    if _is_csrf_exempt(request):
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
# twins run inline on the event loop.
async def _current_user_dep(request: Request) -> User:
    return current_user(request)


async def _db_dep(request: Request) -> Database:
    return get_db(request)


async def _settings_dep(request: Request) -> PortalSettings:
    return get_settings(request)


CurrentUser = Annotated[User, Depends(_current_user_dep)]
Db = Annotated[Database, Depends(_db_dep)]
Settings = Annotated[PortalSettings, Depends(_settings_dep)]


def admin_user(request: Request) -> User:
    """The current user if they are an admin of their company; 403 otherwise."""
    user = current_user(request)
    if user.role != "admin":
        raise ApiError(403, "forbidden", "this action needs the company admin role")
    return user


async def _admin_user_dep(request: Request) -> User:
    return admin_user(request)


AdminUser = Annotated[User, Depends(_admin_user_dep)]
