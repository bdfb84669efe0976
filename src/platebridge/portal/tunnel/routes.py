"""The tunnel's endpoints.

* ``WS /api/pod/tunnel`` — a POD dials in with ``Authorization: Bearer pbk_…`` (public for the
  user guard; authenticated by the pod key like the heartbeat). A wrong key is refused before
  the upgrade (HTTP 403); refused keys count in the heartbeat-key throttle of the source
  address, which then gets 429 (+ ``Retry-After``) before the upgrade, even with a valid key.
  One tunnel per pod: a new one replaces the old.
* ``GET /internal/tunnel/{pod}/{path}`` — another portal process forwards a viewer's request
  for a tunnel held here, signed with an HMAC of the portal's secret key (not for browsers).
* ``GET /internal/tunnel-stats`` — same signature; tunnels, streams and asyncio tasks of this
  process (used by the leak tests and for operators).
"""

from __future__ import annotations

import functools
import logging
import uuid
from typing import Any

import httpx
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from platebridge.core import tunnel as proto
from platebridge.core.aio import within
from platebridge.core.errors import error_body
from platebridge.portal.body_stream import BodyStream
from platebridge.portal.db import Database
from platebridge.portal.errors import ApiError
from platebridge.portal.markers import public
from platebridge.portal.models import ApiKey, Pod
from platebridge.portal.pod_keys import active_key
from platebridge.portal.security import looks_like_api_key, token_hash
from platebridge.portal.settings import PortalSettings
from platebridge.portal.throttle import app_throttle
from platebridge.portal.tunnel.connection import TunnelConnection
from platebridge.portal.tunnel.hub import (
    ERROR_HEADER,
    FORWARD_PREFIX,
    SIGNATURE_HEADER,
    TIME_HEADER,
    TunnelHub,
    verify_forward,
)
from platebridge.portal.tunnel.transport import open_local, tunnel_base_url

log = logging.getLogger("platebridge.portal.tunnel")
STATS_PATH = "/internal/tunnel-stats"


def get_hub(app: Any) -> TunnelHub:
    hub: TunnelHub = app.state.tunnel_hub
    return hub


async def pod_for_key(db: Database, presented: str | None) -> Pod | None:
    """The pod a (pod-kind, unrevoked) key belongs to, or None."""
    if not presented or not looks_like_api_key(presented):
        return None
    async with db.read() as session:
        try:
            key = await active_key(session, token_hash(presented))
        except Exception:  # ApiError 401: unknown or revoked
            return None
        if key.kind != "pod" or key.pod_id is None:
            return None
        return (await session.execute(select(Pod).where(Pod.id == key.pod_id))).scalar_one_or_none()


async def valid_keys(db: Database, hashes: list[bytes]) -> set[bytes]:
    """Which of ``hashes`` are unrevoked pod keys of pods not decommissioned (the hub's
    re-check of the tunnels it holds; one query per 500 tunnels)."""
    out: set[bytes] = set()
    async with db.read() as session:
        for i in range(0, len(hashes), 500):
            stmt = (
                select(ApiKey.key_hash)
                .join(Pod, Pod.id == ApiKey.pod_id)
                .where(
                    ApiKey.key_hash.in_(hashes[i : i + 500]),
                    ApiKey.kind == "pod",
                    ApiKey.revoked_at.is_(None),
                    Pod.decommissioned_at.is_(None),
                )
            )
            out.update(row[0] for row in await session.execute(stmt))
    return out


def _bearer(websocket: WebSocket) -> str | None:
    scheme, _, value = websocket.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


@public
async def tunnel_endpoint(websocket: WebSocket) -> None:
    hub = get_hub(websocket.app)
    db: Database = websocket.app.state.db
    # Refused keys count in the heartbeat-key window of this source (shared with the heartbeat),
    # checked before the key is looked up: a throttled address learns nothing about any key.
    throttle = app_throttle(websocket.app)
    source = websocket.client.host if websocket.client else None
    try:
        throttle.check_heartbeat(source)
    except ApiError as exc:
        log.warning("tunnel refused: too many refused keys from this address")
        await _deny(websocket, exc)
        return
    presented = _bearer(websocket)
    pod = await pod_for_key(db, presented)
    if pod is None or presented is None:
        throttle.heartbeat_failed(source)
        log.warning("tunnel refused: unknown or revoked pod key")
        await websocket.close(code=1008)  # before accept: the client sees HTTP 403
        return
    await websocket.accept()
    conn = TunnelConnection(
        websocket, pod.id, pod.pod_id, window=hub.window, max_streams=hub.max_streams
    )
    await websocket.send_bytes(conn.hello())
    if hub.key_check is None:  # the hub re-checks its tunnels' keys in this database
        hub.key_check = functools.partial(valid_keys, db)
    await hub.attach(conn, token_hash(presented))
    try:
        await conn.run()
    finally:
        await hub.detach(conn)


async def _deny(websocket: WebSocket, exc: ApiError) -> None:
    """Answer the upgrade request with the JSON error (429 + Retry-After) instead of 101; a
    server without the WebSocket denial-response extension refuses with 403 instead."""
    body = exc.body()
    try:
        await websocket.send_denial_response(
            JSONResponse(body, status_code=exc.status, headers=exc.response_headers())
        )
    except RuntimeError:
        await websocket.close(code=1008)


def _error(status: int, error: str, detail: str, tunnel_error: str | None = None) -> JSONResponse:
    headers = {"Cache-Control": "no-store"}
    if tunnel_error:
        headers[ERROR_HEADER] = tunnel_error
    return JSONResponse(error_body(error, detail), status_code=status, headers=headers)


def _signed(request: Request, hub: TunnelHub, what: str, path: str, query: str) -> bool:
    return bool(hub.key) and verify_forward(
        hub.key,
        what,
        path,
        query,
        request.headers.get(TIME_HEADER, ""),
        request.headers.get(SIGNATURE_HEADER, ""),
    )


def _error_code(exc: BaseException) -> str:
    if isinstance(exc, httpx.PoolTimeout):
        return "busy"
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return "timeout"
    if isinstance(exc, httpx.ConnectError):
        return "unreachable"
    return "error"


def _passthrough(upstream: httpx.Response) -> BodyStream:
    """The tunnelled response as is (status, headers, raw body); a failure cuts it short."""
    return BodyStream(
        upstream,
        upstream.aiter_raw(),
        status_code=upstream.status_code,
        headers=proto.response_headers(upstream.headers.items()),
    )


@public
async def forward_endpoint(request: Request) -> Response:
    hub = get_hub(request.app)
    settings: PortalSettings = request.app.state.settings
    pod_hex = str(request.path_params["pod"])
    path = "/" + str(request.path_params["path"])
    query = request.url.query
    if not _signed(request, hub, pod_hex, path, query):
        return _error(403, "forbidden", "internal endpoint")
    try:
        pod = uuid.UUID(hex=pod_hex)
    except ValueError:
        return _error(404, "not_found", "no such pod")
    if not proto.allowed_path(path) or not proto.allowed_query(query):
        return _error(404, "not_found", "not a POD stream path")
    conn = hub.local.get(pod)
    if conn is None:
        return _error(502, "no_tunnel", "this process does not hold the tunnel", "no_tunnel")
    url = f"{tunnel_base_url(pod)}{path}" + (f"?{query}" if query else "")
    upstream_request = httpx.Request(
        "GET", url, extensions={"timeout": {"read": settings.stream_read_timeout}}
    )
    head_timeout = settings.stream_connect_timeout + settings.stream_read_timeout
    try:
        upstream = await within(open_local(conn, path, query, upstream_request), head_timeout)
    except (httpx.HTTPError, TimeoutError) as exc:
        code = _error_code(exc)
        return _error(502, "tunnel_failed", "the tunnelled request failed", code)
    return _passthrough(upstream)


@public
async def stats_endpoint(request: Request) -> Response:
    hub = get_hub(request.app)
    if not _signed(request, hub, "stats", "", ""):
        return _error(403, "forbidden", "internal endpoint")
    return JSONResponse(hub.stats(), headers={"Cache-Control": "no-store"})


def tunnel_routes() -> list[Route | WebSocketRoute]:
    return [
        WebSocketRoute(proto.TUNNEL_PATH, tunnel_endpoint),
        Route(f"{FORWARD_PREFIX}/{{pod}}/{{path:path}}", forward_endpoint, methods=["GET"]),
        Route(STATS_PATH, stats_endpoint, methods=["GET"]),
    ]
