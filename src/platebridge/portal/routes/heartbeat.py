"""``POST /api/pod/heartbeat`` (public route: authenticated by the POD's ``pbk_`` key).

The busiest route (every POD, every interval), so it is served lean: a :class:`PlainRoute`
(no dependency injection, no response-model round trip), the body validated straight from
JSON bytes, the unchanged case as one statement on the database driver
(``services.heartbeat.fast_heartbeat``). Errors are the same ``ApiError`` / pydantic errors
as everywhere, rendered by the app's handlers. A body refused with a key-shaped but unknown
key is answered ``invalid_api_key`` (the key is looked up before the body's error is told)
and so counts toward the source's throttle like any refused key (``portal/json_body.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.responses import Response

from platebridge.core.heartbeat import (
    HEARTBEAT_PATH,
    HeartbeatRequest,
    HeartbeatResponse,
    wants_tunnel,
)
from platebridge.portal import json_body
from platebridge.portal.credentials import bearer_token, client_ip
from platebridge.portal.db import Database
from platebridge.portal.deps import is_public_endpoint, public
from platebridge.portal.errors import ApiError
from platebridge.portal.limits import read_body_capped
from platebridge.portal.models import utcnow
from platebridge.portal.pod_keys import active_key, key_throttled, presented_key_hash
from platebridge.portal.services import heartbeat as hb
from platebridge.portal.services.heartbeat_body import (
    MAX_BODY_BYTES,
    SeenBodies,
    heartbeat_digest,
    parse_heartbeat,
)
from platebridge.portal.settings import PortalSettings
from platebridge.portal.throttle import get_throttle

Endpoint = Callable[[Request], Coroutine[Any, Any, Response]]
T = TypeVar("T")


class PlainRoute(APIRoute):
    """An ``APIRoute`` whose endpoint takes the ``Request`` and returns a ``Response`` itself.

    FastAPI's per-request machinery (solving the app-wide and route dependencies, validating
    and re-serialising the response model) was 29 % of a heartbeat's CPU; the route keeps its
    OpenAPI entry (``response_model``). Only for ``@public`` endpoints: the app-wide
    ``require_user`` guard is a dependency and does not run here.
    """

    def get_route_handler(self) -> Endpoint:
        if not is_public_endpoint(self.endpoint):
            raise TypeError(f"PlainRoute {self.path} must be @public")
        endpoint: Endpoint = self.endpoint
        return endpoint


router = APIRouter(tags=["pod"], route_class=PlainRoute)

_JSON = "application/json"


@router.post(HEARTBEAT_PATH, response_model=HeartbeatResponse)
@public
async def heartbeat(request: Request) -> Response:
    state, source = request.app.state, client_ip(request)
    return await key_throttled(
        get_throttle(request),
        source,
        lambda: _heartbeat(request, state.db, state.settings, state.seen_heartbeats, source),
    )


def _parse(body: bytes) -> HeartbeatRequest:
    json_body.check(body)  # deep nesting, huge numbers, not UTF-8: 422 before any parser
    try:  # the common case: plain JSON, validated from bytes in one pass
        return HeartbeatRequest.model_validate_json(body)
    except ValueError:
        # Anything else (``#`` comments as in the spec's example, a non-object body, a
        # field error) takes the tolerant parser, which also words the error.
        return parse_heartbeat(body)


async def parse_keyed_body(
    db: Database, key_hash: bytes, body: bytes, parse: Callable[[bytes], T]
) -> T:
    """``parse(body)``; a body that does not parse is refused only after the key was looked
    up: an unknown key is told so (``invalid_api_key``, counted by the throttle) before any
    body error."""
    try:
        return parse(body)
    except (ApiError, ValidationError):
        async with db.read() as session:
            await active_key(session, key_hash)
        raise


async def read_keyed_body(
    request: Request, db: Database, max_bytes: int, parse: Callable[[bytes], T]
) -> tuple[bytes, T]:
    """The hash of the ``pbk_`` key a POD request presents and its parsed body (at most
    ``max_bytes``; see :func:`parse_keyed_body`). The enroll route."""
    key_hash = presented_key_hash(bearer_token(request))
    body = await read_body_capped(request, max_bytes)
    return key_hash, await parse_keyed_body(db, key_hash, body, parse)


async def _heartbeat(
    request: Request,
    db: Database,
    settings: PortalSettings,
    seen: SeenBodies,
    source: str | None,
) -> Response:
    key_hash = presented_key_hash(bearer_token(request))
    body = await read_body_capped(request, MAX_BODY_BYTES)
    now = utcnow()
    body_key = seen.key(body)
    known = seen.get(body_key)  # the same bytes validated before: (pod_id, digest)
    if known is not None:
        mode = await hb.fast_heartbeat(db, key_hash, *known, now)
        if mode is not None:
            return _answer(settings, known[0], now, False, mode)
    req = await parse_keyed_body(db, key_hash, body, _parse)
    digest = heartbeat_digest(req)
    mode = None
    if digest is not None:
        seen.add(body_key, req.pod_id, digest)
        if known is None:  # (a known body was just refused by the fast path)
            mode = await hb.fast_heartbeat(db, key_hash, req.pod_id, digest, now)
    if mode is None:
        async with db.write() as session:
            outcome = await hb.slow_heartbeat(session, key_hash, req, digest, now, source)
        return _answer(settings, req.pod_id, now, outcome.registered, outcome.stream_mode)
    return _answer(settings, req.pod_id, now, False, mode)


def _answer(
    settings: PortalSettings, pod_id: str, now: datetime, registered: bool, mode: str
) -> Response:
    answer = HeartbeatResponse(
        ok=True,
        pod_id=pod_id,
        server_time=now,
        heartbeat_interval=settings.heartbeat_interval,
        registered=registered,
        tunnel=wants_tunnel(mode),
    )
    return Response(answer.model_dump_json().encode(), media_type=_JSON)
