"""Stream access: viewer tokens, who may watch, where the POD is, and the portal's POD tokens.

* Viewer tokens (``POST /api/pod/stream-token``) are signed with the pod's stream secret (the
  portal-wide ``POD_STREAM_SECRET`` when the pod has none), bound to user, pod and camera.
* A proxy request is authorised by the user's session (tenant-scoped) or by such a token for
  exactly that pod and camera (for players that send neither cookies nor headers).
* The portal never forwards a viewer's token to a POD: it signs its own short-lived POD-side
  token per pod and camera (:class:`UpstreamTokens`).
* The POD's address passes the SSRF guard before anything connects to it.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from platebridge.core.tokens import (
    StreamClaims,
    TokenError,
    b64url_decode,
    sign_stream_token,
    verify_stream_token,
)
from platebridge.portal.credentials import client_ip as client_ip
from platebridge.portal.credentials import session_token
from platebridge.portal.db import Database
from platebridge.portal.errors import ApiError
from platebridge.portal.models import Camera, Pod, User, utcnow
from platebridge.portal.scoping import get_camera_for_user
from platebridge.portal.services import audit
from platebridge.portal.services.auth import user_for_token
from platebridge.portal.settings import PortalSettings
from platebridge.portal.status import effective_pod_status
from platebridge.portal.streaming.relay import PodRelay, UpstreamError
from platebridge.portal.streaming.select import (
    ReachabilityCache,
    Upstream,
    tunnel_upstream,
    uses_tunnel,
)
from platebridge.portal.streaming.ssrf import (
    AddressRefused,
    IPNetwork,
    parse_networks,
    pod_base_url,
)
from platebridge.portal.streaming.tunnel_relay import tunnel_relay
from platebridge.portal.tunnel.hub import TunnelHub

#: ``user_id`` claim of the portal's own POD-side tokens (the POD logs it, nothing else).
PORTAL_USER_ID = "platebridge-portal"
MAX_SNAPSHOT_BYTES = 4 * 1024 * 1024


# --- process-wide state --------------------------------------------------------------------------


class UpstreamTokens:
    """The portal's POD-side tokens, one per (pod, camera, secret), re-signed at half-life."""

    def __init__(self, ttl: int) -> None:
        self.ttl = ttl
        self._cache: dict[tuple[uuid.UUID, str, str], tuple[str, float]] = {}

    def token(self, pod: Pod, camera_id: str, secret: str, now: float | None = None) -> str:
        now = time.time() if now is None else now
        key = (pod.id, camera_id, secret)
        cached = self._cache.get(key)
        if cached is not None and cached[1] - now > self.ttl / 2:
            return cached[0]
        if len(self._cache) > 10_000:
            self._cache.clear()
        exp = int(now) + self.ttl
        claims = StreamClaims(PORTAL_USER_ID, pod.pod_id, camera_id, exp=exp, iat=int(now))
        token = sign_stream_token(claims, secret)
        self._cache[key] = (token, float(exp))
        return token


class AccessCache:
    """Recent :func:`authorize_stream` answers, per process, for ``ttl`` seconds at most.

    A player fetches the playlist every second and a segment right after it: checking the
    session (or the stream token's user) and the tenant-scoped camera in the database for every
    one of them was most of the proxy's per-request cost. Only successes are remembered, keyed
    by the exact credential (session token or stream token) and pod and camera; an entry never
    outlives its stream token's ``exp``. Staleness bound: for ``ttl`` seconds after a change in
    the database, a revoked or expired session, a deleted camera or user, a changed pod address
    or mode, or a pod gone offline may still be served as before, by this process. A request
    whose POD fails (any :class:`UpstreamError` in the proxy routes) drops the pod's
    entries at once, so a dead POD's viewers see ``pod_offline`` as soon as the database says so.
    """

    def __init__(self, ttl: float, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[tuple[str | None, str | None, str, str], tuple[Access, float]] = {}
        #: One database check per key at a time: 50 viewers whose entry expired together
        #: wait for the first one's answer instead of taking 50 database connections.
        self.inflight: dict[tuple[str | None, str | None, str, str], asyncio.Future[Access]] = {}

    def get(self, key: tuple[str | None, str | None, str, str]) -> Access | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[1] <= time.monotonic():
            del self._entries[key]
            return None
        return entry[0]

    def put(
        self, key: tuple[str | None, str | None, str, str], access: Access, not_after: float
    ) -> None:
        """Remember ``access`` for ``ttl`` seconds, never past ``not_after`` (wall clock)."""
        if self.ttl <= 0:
            return
        now = time.monotonic()
        lifetime = min(self.ttl, not_after - time.time())
        if lifetime <= 0:
            return
        if len(self._entries) >= self.max_entries:
            self._entries = {k: v for k, v in self._entries.items() if v[1] > now}
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
        self._entries[key] = (access, now + lifetime)

    def forget_pod(self, pod_id: str) -> None:
        """Drop every entry of ``pod_id`` (its POD failed: the next request re-reads its row)."""
        for key in [k for k in self._entries if k[2] == pod_id]:
            self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()


@dataclass
class StreamingState:
    """Everything the streaming routes share in one portal process (built in the lifespan)."""

    relay: PodRelay
    networks: tuple[IPNetwork, ...]
    upstream_tokens: UpstreamTokens
    viewings: audit.ViewingTracker
    #: Method 4: the tunnel hub and its relay, and for ``auto`` pods a
    #: remembered reachability of their reported addresses.
    hub: TunnelHub | None = None
    tunnel_relay: PodRelay | None = None
    reachability: ReachabilityCache = field(default_factory=ReachabilityCache)
    #: Recent viewer authorisations (``stream_auth_cache_seconds``; off when 0).
    access_cache: AccessCache = field(default_factory=lambda: AccessCache(0))

    @classmethod
    def create(cls, settings: PortalSettings, hub: TunnelHub | None = None) -> StreamingState:
        """The complete state: with a hub, its tunnel relay too (the lifespan builds it once)."""
        networks = parse_networks(settings.pod_networks)
        relay = PodRelay.create(
            settings.stream_connect_timeout,
            settings.stream_read_timeout,
            allowed_networks=networks,
        )
        return cls(
            relay=relay,
            networks=networks,
            upstream_tokens=UpstreamTokens(settings.upstream_token_ttl),
            viewings=audit.ViewingTracker(),
            access_cache=AccessCache(settings.stream_auth_cache_seconds),
            hub=hub,
            tunnel_relay=tunnel_relay(hub, settings) if hub is not None else None,
        )

    async def aclose(self) -> None:
        await self.relay.aclose()
        if self.tunnel_relay is not None:
            await self.tunnel_relay.aclose()


def streaming_state(request: Request) -> StreamingState:
    state: StreamingState = request.app.state.streaming
    return state


# --- secrets, addresses, status -------------------------------------------------------------


def stream_secret(pod: Pod, settings: PortalSettings) -> str:
    """The pod's own stream secret, else the portal-wide fallback; 503 when neither exists."""
    if pod.stream_token_secret:
        return pod.stream_token_secret
    if settings.pod_stream_secret is not None and settings.pod_stream_secret.get_secret_value():
        return settings.pod_stream_secret.get_secret_value()
    raise ApiError(503, "no_stream_secret", "this pod has no stream secret configured")


def require_online(pod: Pod, settings: PortalSettings) -> None:
    status = effective_pod_status(pod.status, pod.last_heartbeat, settings.offline_after)
    if status == "offline":
        raise ApiError(409, "pod_offline", f"pod {pod.pod_id!r} is offline (no recent heartbeat)")
    if status != "online":
        raise ApiError(409, "pod_unavailable", f"pod {pod.pod_id!r} reports status {status!r}")


def proxy_refusal(pod: Pod, networks: tuple[IPNetwork, ...]) -> str | None:
    """Why the portal will not connect to this pod, or None when it may."""
    if not pod.ip_address:
        return "the pod has not reported an address yet"
    try:
        pod_base_url(pod.ip_address, pod.stream_port, networks)
    except AddressRefused as exc:
        return exc.message
    except ValueError:
        return "the pod's stream port is invalid"
    return None


def pod_base(pod: Pod, networks: tuple[IPNetwork, ...]) -> str:
    """``http://ip:port`` of the pod, or 409 ``pod_address_refused`` (nothing is connected)."""
    reason = proxy_refusal(pod, networks)
    if reason is not None or pod.ip_address is None:
        raise ApiError(
            409, "pod_address_refused", f"the portal will not connect to this pod: {reason}"
        )
    return pod_base_url(pod.ip_address, pod.stream_port, networks)


def direct_url(camera: Camera, pod: Pod, token: str) -> str | None:
    """``{stream_url}?token=…`` for the browser to fetch from the POD, when the pod has one."""
    if not pod.ip_address or not camera.stream_url:
        return None
    return f"{camera.stream_url}?token={quote(token, safe='')}"


def proxy_path(pod_id: str, camera_id: str, token: str | None) -> str:
    query = f"camera_id={quote(camera_id, safe='')}"
    if token is not None:
        query += f"&token={quote(token, safe='')}"
    return f"/api/pod/proxy-stream/{quote(pod_id, safe='')}?{query}"


# --- viewer tokens ------------------------------------------------------------------------------


def sign_viewer_token(
    user: User, pod: Pod, camera: Camera, settings: PortalSettings, now: float
) -> tuple[str, int]:
    exp = math.ceil(now) + settings.stream_token_ttl  # lives at least the configured lifetime
    claims = StreamClaims(str(user.id), pod.pod_id, camera.camera_id, exp=exp, iat=int(now))
    return sign_stream_token(claims, stream_secret(pod, settings)), exp


async def issue_stream_token(
    db: Database,
    user: User,
    pod_id: str,
    camera_id: str,
    settings: PortalSettings,
    state: StreamingState,
    ip: str | None,
) -> dict[str, Any]:
    """Issue a viewer token (and record it); 404 outside the user's company, 409 not watchable."""
    async with db.write() as session:
        camera, pod = await get_camera_for_user(session, user, pod_id, camera_id)
        require_online(pod, settings)
        if camera.status == "inactive":
            raise ApiError(
                409, "camera_inactive", f"camera {camera_id!r} is not reported by its pod"
            )
        mode = token_method(pod, state)
        if mode == "proxy":
            pod_base(pod, state.networks)
        now = time.time()
        token, exp = sign_viewer_token(user, pod, camera, settings, now)
        session.add(
            audit.new_event(
                user,
                pod_id=pod.pod_id,
                camera_id=camera.camera_id,
                action="token_issued",
                method=mode,
                client_ip=ip,
            )
        )
    return {
        "token": token,
        "expires_at": datetime.fromtimestamp(exp, UTC).isoformat().replace("+00:00", "Z"),
        "expires_in": int(exp - now),
        "stream_mode": mode,
        "proxy_url": proxy_path(pod.pod_id, camera.camera_id, token),
        "direct_url": direct_url(camera, pod, token),
    }


def direct_url_signer(user: User, settings: PortalSettings, issued: list[tuple[str, str]]) -> Any:
    """For the camera list: a tokened direct URL for cameras of direct-mode pods.

    Returns ``sign(camera, pod) -> url | None``; every token issued is appended to ``issued``
    as ``(pod_id, camera_id)`` so the caller can record it in the audit trail.
    """
    now = time.time()

    def sign(camera: Camera, pod: Pod) -> str | None:
        if pod.stream_mode != "direct" or camera.status == "inactive":
            return None
        try:
            token, _ = sign_viewer_token(user, pod, camera, settings, now)
        except ApiError:
            return None
        url = direct_url(camera, pod, token)
        if url is not None:
            issued.append((pod.pod_id, camera.camera_id))
        return url

    return sign


async def record_tokens_issued(
    db: Database, user: User, issued: list[tuple[str, str]], ip: str | None
) -> None:
    if not issued:
        return
    async with db.write() as session:
        for pod_id, camera_id in issued:
            session.add(
                audit.new_event(
                    user,
                    pod_id=pod_id,
                    camera_id=camera_id,
                    action="token_issued",
                    method="direct",
                    client_ip=ip,
                )
            )


# --- who may watch -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Access:
    """A request allowed to watch ``camera`` of ``pod``; ``token`` when a stream token did it."""

    user: User
    pod: Pod
    camera: Camera
    token: str | None


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
    if user is None:
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
    return Access(user=user, pod=pod, camera=camera, token=token), claims.exp


async def authorize_stream(
    request: Request,
    db: Database,
    settings: PortalSettings,
    pod_id: str,
    camera_id: str | None,
    token: str | None,
) -> Access:
    """Session first (tenant-scoped: another company's camera is 404), else the stream token.

    A success is remembered for ``stream_auth_cache_seconds`` per process (:class:`AccessCache`).
    """
    login = session_token(request)
    if login is None and not token:
        raise _unauthorized("login or a stream token is required")
    state = getattr(request.app.state, "streaming", None)
    cache = state.access_cache if isinstance(state, StreamingState) else None
    key = (login, token or None, pod_id, camera_id or "")
    if cache is None or not camera_id or cache.ttl <= 0:
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
    cache: AccessCache | None,
    key: tuple[str | None, str | None, str, str],
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
    if cache is not None:
        cache.put(key, access, not_after)
    return access


# --- the proxy -----------------------------------------------------------------------------------


def token_method(pod: Pod, state: StreamingState) -> audit.Method:
    """How a token's viewer will be served (for the audit row; no connection is made)."""
    if pod.stream_mode == "direct":
        return "direct"
    if pod.stream_mode == "tunnel":
        return "tunnel"
    if pod.stream_mode == "auto" and state.hub is not None:
        known = None
        if pod.ip_address and proxy_refusal(pod, state.networks) is None:
            known = state.reachability.peek(pod.ip_address, pod.stream_port)
        if known is False or (known is None and proxy_refusal(pod, state.networks) is not None):
            return "tunnel"
    return "proxy"


async def upstream_for(pod: Pod, state: StreamingState) -> Upstream:
    """Proxy to the pod's address, or its tunnel (``tunnel``; ``auto`` when unreachable)."""
    hub, relay = state.hub, state.tunnel_relay
    if (
        hub is not None
        and relay is not None
        and await uses_tunnel(pod, hub, state.networks, state.reachability)
    ):
        return tunnel_upstream(pod, relay)
    return Upstream("proxy", pod_base(pod, state.networks), state.relay)


def upstream_failed(pod: Pod, up: Upstream, state: StreamingState, exc: UpstreamError) -> bool:
    """An ``auto`` pod's proxy failed to connect: remember it; True when the tunnel may help."""
    if pod.stream_mode != "auto" or up.method != "proxy" or pod.ip_address is None:
        return False
    if exc.error not in ("upstream_unreachable", "upstream_timeout"):
        return False
    state.reachability.mark_unreachable(pod.ip_address, pod.stream_port)
    return True


def upstream_token(access: Access, settings: PortalSettings, state: StreamingState) -> str:
    secret = stream_secret(access.pod, settings)
    return state.upstream_tokens.token(access.pod, access.camera.camera_id, secret)


async def record_stream_started(
    db: Database,
    access: Access,
    state: StreamingState,
    ip: str | None,
    method: audit.Method = "proxy",
) -> bool:
    """Write ``stream_started`` when this playlist fetch begins a new viewing."""
    key = (str(access.user.id), str(access.pod.id), access.camera.camera_id, ip or "")
    if not state.viewings.starts_viewing(key):
        return False
    async with db.write() as session:
        session.add(
            audit.new_event(
                access.user,
                pod_id=access.pod.pod_id,
                camera_id=access.camera.camera_id,
                action="stream_started",
                method=method,
                client_ip=ip,
                at=utcnow(),
            )
        )
    return True


async def fetch_snapshot(relay: PodRelay, url: str) -> bytes:
    """The POD's JPEG at ``url`` (bounded in time and size), or :class:`UpstreamError`."""
    try:
        return await asyncio.wait_for(_snapshot(relay.client, url), relay.playlist_timeout)
    except TimeoutError:
        raise UpstreamError(504, "upstream_timeout", "the POD did not answer in time") from None
    except httpx.ConnectTimeout:
        raise UpstreamError(504, "upstream_timeout", "connecting to the POD timed out") from None
    except httpx.TimeoutException:
        raise UpstreamError(504, "upstream_timeout", "the POD did not answer in time") from None
    except httpx.ConnectError:
        raise UpstreamError(502, "upstream_unreachable", "the POD cannot be reached") from None
    except httpx.HTTPError:
        raise UpstreamError(502, "upstream_error", "the connection to the POD failed") from None


async def _snapshot(client: httpx.AsyncClient, url: str) -> bytes:
    async with client.stream("GET", url) as response:
        if response.status_code == 404:
            raise UpstreamError(404, "not_found", "the POD does not know this camera")
        if response.status_code in (429, 503):
            raise UpstreamError(
                503, "stream_not_ready", "no picture yet, try again shortly", retry_after=2
            )
        if response.status_code in (401, 403):
            raise UpstreamError(
                502, "upstream_refused_token", "the POD refused the portal's stream token"
            )
        if response.status_code != 200:
            raise UpstreamError(
                502, "upstream_error", f"the POD answered HTTP {response.status_code}"
            )
        media = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media != "image/jpeg":
            raise UpstreamError(502, "upstream_bad_snapshot", "the POD did not send a JPEG")
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > MAX_SNAPSHOT_BYTES:
                raise UpstreamError(502, "upstream_bad_snapshot", "the POD's picture is too large")
        return bytes(body)
