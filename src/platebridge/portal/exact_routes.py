"""Exact routes: the POD's hot ``PlainRoute`` endpoints (heartbeat, enroll) served without the
router's matching.

FastAPI (0.165) matches a request by walking every included router's effective routes, with
per-route scope bookkeeping: on an unchanged heartbeat that walk, the route's exit stacks
and its request wrapper were about a fifth of the portal's CPU (bench/heartbeat_asgi.py,
cProfile). A request whose method and path are exactly a ``PlainRoute``'s (no path
parameters; these routes take the ``Request`` and return a ``Response`` themselves and
depend on nothing) goes straight to its endpoint instead. Everything else of the app stays
in front of it: this middleware is the innermost of the app's own, so the metrics, security
headers, body limits and ``CatchUnexpected`` wrap it, and the endpoint runs inside Starlette's
``ExceptionMiddleware`` with the app's own exception handlers — the same error bodies as
through the router. Anything else (other paths, other methods, a ``root_path``) takes the
router as before.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI
from starlette.middleware import Middleware
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.routing import BaseRoute, request_response
from starlette.types import ASGIApp, Receive, Scope, Send

#: (method, path) → (the route, for ``scope["route"]`` as the router sets it; its ASGI app)
Lanes = dict[tuple[str, str], tuple[BaseRoute, ASGIApp]]


class ExactRoutes:
    """ASGI middleware (see the module docstring). ``routers``: the routers whose routes of
    ``route_class`` are served directly; they must be included without a prefix."""

    def __init__(self, app: ASGIApp, routers: tuple[APIRouter, ...], route_class: type) -> None:
        self.app = app
        self._routers = routers
        self._route_class = route_class
        self._lanes: Lanes | None = None

    def _build(self, fastapi_app: FastAPI) -> Lanes:
        # As FastAPI.build_middleware_stack: 500 / Exception are ServerErrorMiddleware's.
        handlers: dict[Any, Any] = {
            key: handler
            for key, handler in fastapi_app.exception_handlers.items()
            if key not in (500, Exception)
        }
        lanes: Lanes = {}
        for router in self._routers:
            for route in router.routes:
                path = getattr(route, "path", None)
                if not isinstance(route, self._route_class) or not isinstance(path, str):
                    continue
                if getattr(route, "param_convertors", None):
                    continue  # a path with parameters needs the router's matching
                lane = ExceptionMiddleware(
                    request_response(route.endpoint),  # type: ignore[attr-defined]
                    handlers=handlers,
                    debug=fastapi_app.debug,
                )
                for method in getattr(route, "methods", None) or ():
                    lanes[(method, path)] = (route, lane)
        return lanes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            lanes = self._lanes
            if lanes is None:
                lanes = self._lanes = self._build(scope["app"])
            lane = lanes.get((scope["method"], scope["path"]))
            if lane is not None:
                scope["route"] = lane[0]
                await lane[1](scope, receive, send)
                return
        await self.app(scope, receive, send)


def install_exact_routes(app: FastAPI, *routers: APIRouter, route_class: type) -> None:
    """Serve ``routers``' ``route_class`` routes directly, innermost of the app's middleware
    (appended after ``CatchUnexpected``; call after ``install_error_handlers``)."""
    kwargs = {"routers": routers, "route_class": route_class}
    app.user_middleware.append(Middleware(ExactRoutes, **kwargs))  # type: ignore[arg-type]
