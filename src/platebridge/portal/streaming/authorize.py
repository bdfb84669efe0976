"""Who may watch: a viewer's session (tenant-scoped) or a stream token for exactly that pod and
camera (for players that send neither cookies nor headers), and whether the pod is online.

What the route needs (``live``, or ``footage`` / ``export`` of recorded video) is checked after
the tenant lookup, on every request (cached answers too): the role's capability
(``scoping.require_capability``) and, for a token, its scope — a live token never reads
footage, a footage token never watches live (403 ``wrong_scope``).

The callers hand in plain values: the login token the request carried (``None`` without one),
the stream token from the query, and the process's :class:`StreamingState` for its cache.
"""

from __future__ import annotations

import asyncio
import json
import math
import uuid

from fastapi.exceptions import RequestValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from platebridge.core.tokens import TokenError, b64url_decode, verify_stream_token
from platebridge.portal.db import Database
from platebridge.portal.errors import ApiError
from platebridge.portal.models import Pod, User
from platebridge.portal.scoping import Capability, get_camera_for_user, require_capability
from platebridge.portal.services.auth import user_for_token
from platebridge.portal.settings import PortalSettings
from platebridge.portal.status import effective_pod_status
from platebridge.portal.streaming.access_cache import Access, AccessCache, AccessKey
from platebridge.portal.streaming.state import StreamingState
from platebridge.portal.streaming.tokens import stream_secret


def require_online(pod: Pod, settings: PortalSettings) -> None:
    """409 ``pod_offline`` / ``pod_unavailable`` unless the pod's effective status is online."""
    status = effective_pod_status(pod.status, pod.last_heartbeat, settings.offline_after)
    if status == "offline":
        raise ApiError(409, "pod_offline", f"pod {pod.pod_id!r} is offline (no recent heartbeat)")
    if status != "online":
        raise ApiError(409, "pod_unavailable", f"pod {pod.pod_id!r} reports status {status!r}")


def _unauthorized(message: str, code: str = "unauthorized") -> ApiError:
    return ApiError(401, code, message, headers={"WWW-Authenticate": "Bearer"})


def _peek_user_id(token: str) -> uuid.UUID:
    """The (unverified) user id claim: only used to find the pod whose secret verifies it."""
    try:
        payload = json.loads(b64url_decode(token.split(".", 1)[0]).decode("utf-8"))
        return uuid.UUID(str(payload["user_id"]))
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, AttributeError, RecursionError):
        raise _unauthorized("stream token is not valid", "invalid_stream_token") from None


async def _access_by_token(
    session: AsyncSession, token: str, pod_id: str, camera_id: str, settings: PortalSettings
) -> tuple[Access, int]:
    invalid = _unauthorized("stream token is not valid for this camera", "invalid_stream_token")
    user = await session.get(User, _peek_user_id(token))
    if user is None or user.disabled_at is not None:  # deleted or disabled: the token is void
        raise invalid
    try:
        camera, pod = await get_camera_for_user(session, user, pod_id, camera_id)
        claims = verify_stream_token(token, stream_secret(pod, settings))
    except ApiError:
        raise invalid from None
    except TokenError as exc:
        if exc.reason == "expired":
            raise _unauthorized("stream token has expired", "stream_token_expired") from None
        raise invalid from None
    if (claims.user_id, claims.pod_id, claims.camera_id) != (
        str(user.id),
        pod.pod_id,
        camera.camera_id,
    ):
        raise invalid
    footage = None
    if claims.start is not None and claims.end is not None:
        footage = (claims.start, claims.end)
    access = Access(user, pod, camera, token, scope=claims.scope, footage=footage)
    return access, claims.exp


def check_use(access: Access, need: Capability) -> None:
    """403 unless the token's scope fits ``need`` and the user's role has that capability."""
    if access.scope is not None and access.scope != ("live" if need == "live" else "footage"):
        kind = "a live" if access.scope == "live" else "a footage"
        raise ApiError(403, "wrong_scope", f"{kind} stream token is not valid here")
    require_capability(access.user, need)


async def authorize_stream(
    db: Database,
    settings: PortalSettings,
    state: StreamingState,
    pod_id: str,
    camera_id: str | None,
    *,
    login: str | None,
    token: str | None,
    need: Capability = "live",
) -> Access:
    """Session first (tenant-scoped: another company's camera is 404), else the stream token;
    then what the route needs (:func:`check_use`: 403).

    ``login`` is the request's session token (cookie or bearer), ``token`` the stream token.
    A success is remembered for ``stream_auth_cache_seconds`` per process (:class:`AccessCache`).
    """
    access = await _authorize_cached(db, settings, state, pod_id, camera_id, login, token)
    check_use(access, need)
    return access


async def _authorize_cached(
    db: Database,
    settings: PortalSettings,
    state: StreamingState,
    pod_id: str,
    camera_id: str | None,
    login: str | None,
    token: str | None,
) -> Access:
    if login is None and not token:
        raise _unauthorized("login or a stream token is required")
    cache = state.access_cache
    key: AccessKey = (login, token or None, pod_id, camera_id or "")
    if not camera_id or cache.ttl <= 0:
        return await _authorize(login, db, settings, pod_id, camera_id, token, cache, key)
    cached = cache.get(key)
    if cached is not None:
        return cached
    leader = cache.inflight.get(key)
    if leader is not None:
        try:
            return await asyncio.shield(leader)
        except Exception:  # the leader's answer was an error: find ours ourselves
            return await _authorize(login, db, settings, pod_id, camera_id, token, cache, key)
    future: asyncio.Future[Access] = asyncio.get_running_loop().create_future()
    cache.inflight[key] = future
    try:
        access = await _authorize(login, db, settings, pod_id, camera_id, token, cache, key)
    except BaseException as exc:
        if isinstance(exc, Exception):
            future.set_exception(exc)
        else:
            future.cancel()
        future.exception() if not future.cancelled() else None  # retrieved: no warning
        raise
    else:
        future.set_result(access)
        return access
    finally:
        if cache.inflight.get(key) is future:
            del cache.inflight[key]


async def _authorize(
    login: str | None,
    db: Database,
    settings: PortalSettings,
    pod_id: str,
    camera_id: str | None,
    token: str | None,
    cache: AccessCache,
    key: AccessKey,
) -> Access:
    async with db.read() as session:
        user = await user_for_token(session, login) if login else None
        if user is None and not token:
            raise _unauthorized("session is invalid or has expired")
        if not camera_id:
            raise RequestValidationError(
                [{"loc": ("query", "camera_id"), "msg": "Field required", "type": "missing"}]
            )
        if user is not None:
            camera, pod = await get_camera_for_user(session, user, pod_id, camera_id)
            access = Access(user=user, pod=pod, camera=camera, token=token or None)
            not_after = math.inf
        else:
            access, exp = await _access_by_token(session, token or "", pod_id, camera_id, settings)
            not_after = float(exp)
    cache.put(key, access, not_after)
    return access
