"""``POST /api/pod/heartbeat`` (public route: authenticated by the POD's ``pbk_`` key)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import ValidationError

from platebridge.core.heartbeat import HEARTBEAT_PATH, HeartbeatRequest, HeartbeatResponse
from platebridge.portal.deps import Db, Settings, bearer_token, public
from platebridge.portal.errors import ApiError
from platebridge.portal.limits import read_body_capped
from platebridge.portal.models import utcnow
from platebridge.portal.security import looks_like_api_key, token_hash
from platebridge.portal.services import heartbeat as hb
from platebridge.portal.throttle import client_address, get_throttle

router = APIRouter(tags=["pod"])


def _key_hash(request: Request) -> bytes:
    key = bearer_token(request)
    if key is None:
        raise ApiError(
            401,
            "missing_api_key",
            "Authorization: Bearer pbk_… header is required",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not looks_like_api_key(key):
        raise ApiError(401, "invalid_api_key", "API key is unknown or revoked")
    return token_hash(key)


@router.post(HEARTBEAT_PATH, response_model=HeartbeatResponse)
@public
async def heartbeat(request: Request, db: Db, settings: Settings) -> HeartbeatResponse:
    throttle, source = get_throttle(request), client_address(request)
    throttle.check_heartbeat(source)  # a throttled address learns nothing about any key
    try:
        return await _heartbeat(request, db, settings)
    except ApiError as exc:
        if exc.code == "invalid_api_key":
            throttle.heartbeat_failed(source)
        raise


async def _heartbeat(request: Request, db: Db, settings: Settings) -> HeartbeatResponse:
    key_hash = _key_hash(request)
    body = await read_body_capped(request, hb.MAX_BODY_BYTES)
    try:
        req: HeartbeatRequest = hb.parse_heartbeat(body)
    except (ApiError, ValidationError):
        async with db.read() as session:  # an unknown key is told so before any field error
            await hb.active_key(session, key_hash)
        raise
    now = utcnow()
    digest = hb.heartbeat_digest(req)
    registered = False
    if digest is None or not await hb.fast_heartbeat(db, key_hash, req, digest, now):
        client = request.client.host if request.client else None
        async with db.write() as session:
            outcome = await hb.slow_heartbeat(session, key_hash, req, digest, now, client)
        registered = outcome.registered
    return HeartbeatResponse(
        ok=True,
        pod_id=req.pod_id,
        server_time=now,
        heartbeat_interval=settings.heartbeat_interval,
        registered=registered,
    )
