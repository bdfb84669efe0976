"""Markers on route endpoints: public (no login), page (HTML, redirect to /login), CSRF-exempt.

Kept apart from ``deps`` so that packages which only declare routes (the tunnel endpoint) do
not depend on the request dependencies, and ``deps`` can depend on them without a cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from starlette.requests import HTTPConnection

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


def is_public(request: HTTPConnection) -> bool:
    route = request.scope.get("route")
    return is_public_endpoint(getattr(route, "endpoint", None))


def page(endpoint: F) -> F:
    """Mark an HTML page: signed-out visitors are redirected to ``/login`` instead of a 401,
    and errors render as a page (see ``pages.errors``)."""
    setattr(endpoint, _PAGE_ATTR, True)
    return endpoint


def is_page(request: HTTPConnection) -> bool:
    route = request.scope.get("route")
    return bool(getattr(getattr(route, "endpoint", None), _PAGE_ATTR, False))


def csrf_exempt(endpoint: F) -> F:
    """Skip the CSRF check for a cookie-authenticated unsafe request (only ``POST
    /api/auth/logout``: a forged logout merely ends the session)."""
    setattr(endpoint, _CSRF_EXEMPT_ATTR, True)
    return endpoint


def is_csrf_exempt(request: HTTPConnection) -> bool:
    route = request.scope.get("route")
    return bool(getattr(getattr(route, "endpoint", None), _CSRF_EXEMPT_ATTR, False))
