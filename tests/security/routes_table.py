"""The portal's route table, read from a real ``create_app()``: what every matrix walks."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, get_args

from fastapi.routing import APIRoute, APIWebSocketRoute
from starlette.routing import Route, WebSocketRoute

from platebridge.portal.app import create_app
from platebridge.portal.deps import AdminUser, admin_user
from platebridge.portal.settings import PortalSettings

#: The ``method`` of a WebSocket route (a GET with ``Upgrade``; answered 101 or refused).
WEBSOCKET = "WS"


@dataclass(frozen=True)
class RouteInfo:
    path: str
    method: str  # an HTTP method, or WEBSOCKET
    path_params: tuple[str, ...]
    query_params: tuple[str, ...]
    body_fields: tuple[str, ...]
    admin_only: bool
    api: bool  # an APIRoute under /api (JSON errors expected)

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"


#: The callables behind ``AdminUser`` (whatever wrapper deps.py uses) and ``admin_user``.
ADMIN_CHECKS = {admin_user, *(getattr(m, "dependency", None) for m in get_args(AdminUser)[1:])}


def _needs_admin(dependant: Any) -> bool:
    return any(
        d.call in ADMIN_CHECKS or _needs_admin(d) for d in getattr(dependant, "dependencies", [])
    )


def _body_fields(dependant: Any) -> tuple[str, ...]:
    names: list[str] = []
    for param in dependant.body_params:
        annotation = getattr(param.field_info, "annotation", None)
        fields = getattr(annotation, "model_fields", None)
        # the wire names (a field ``from_`` is sent as its alias ``from``)
        names.extend([f.alias or k for k, f in fields.items()] if fields else [param.alias])
    return tuple(names)


def _query_params(dependant: Any) -> tuple[str, ...]:
    """The route's query parameters, its dependencies' included (the streaming path's)."""
    names = [p.alias for p in dependant.query_params]
    for sub in getattr(dependant, "dependencies", []):
        names += [n for n in _query_params(sub) if n not in names]
    return tuple(names)


def _flat_routes(routes: list[Any]) -> Iterator[Any]:
    """Every endpoint route with its full path (FastAPI >= 0.13x nests included routers)."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI: the app's routes are already flat
        yield from routes
        return
    yield from iter_route_contexts(routes)


def portal_routes() -> Iterator[RouteInfo]:
    app = create_app(PortalSettings(database_url="sqlite:///unused.db"))
    for route in _flat_routes(app.routes):
        original = getattr(route, "original_route", route)
        if isinstance(original, WebSocketRoute):
            methods = [WEBSOCKET]
        elif isinstance(original, Route):
            methods = sorted((route.methods or set()) - {"HEAD", "OPTIONS"})
        else:
            continue  # mounts (static files) have no identifiers
        typed = isinstance(original, APIRoute | APIWebSocketRoute)
        dependant = getattr(route, "dependant", None) if typed else None
        for method in methods:
            yield RouteInfo(
                path=str(route.path),
                method=method,
                path_params=tuple(route.param_convertors),
                query_params=_query_params(dependant) if dependant else (),
                body_fields=_body_fields(dependant) if dependant else (),
                admin_only=_needs_admin(dependant) if dependant else False,
                api=str(route.path).startswith("/api/"),
            )
