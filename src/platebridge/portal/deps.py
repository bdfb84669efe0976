"""Request dependencies and the secure-by-default guard.

``require_user`` is installed once on the app: every route needs a logged-in user unless its
endpoint is decorated with :func:`public`. Routes read the user with ``CurrentUser``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request

from platebridge.portal.db import Database
from platebridge.portal.errors import ApiError
from platebridge.portal.models import User
from platebridge.portal.services.auth import user_for_token
from platebridge.portal.settings import PortalSettings

SESSION_COOKIE = "pb_session"
_PUBLIC_ATTR = "__platebridge_public__"
F = TypeVar("F", bound=Callable[..., Any])


def public(endpoint: F) -> F:
    """Mark a route endpoint as reachable without a user (heartbeat, login, health)."""
    setattr(endpoint, _PUBLIC_ATTR, True)
    return endpoint


def is_public(request: Request) -> bool:
    route = request.scope.get("route")
    return bool(getattr(getattr(route, "endpoint", None), _PUBLIC_ATTR, False))


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
        raise _unauthorized("login required")
    async with get_db(request).read() as session:
        user = await user_for_token(session, token)
    if user is None:
        raise _unauthorized("session is invalid or has expired")
    request.state.user = user
    request.state.session_token = token


def current_user(request: Request) -> User:
    user: User | None = getattr(request.state, "user", None)
    if user is None:  # a public route asked for a user: a programming error, refuse safely
        raise _unauthorized("login required")
    return user


CurrentUser = Annotated[User, Depends(current_user)]
Db = Annotated[Database, Depends(get_db)]
Settings = Annotated[PortalSettings, Depends(get_settings)]


def admin_user(request: Request) -> User:
    """The current user if they are an admin of their company; 403 otherwise."""
    user = current_user(request)
    if user.role != "admin":
        raise ApiError(403, "forbidden", "this action needs the company admin role")
    return user


AdminUser = Annotated[User, Depends(admin_user)]
