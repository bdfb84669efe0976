"""Signing: viewer tokens, the portal's own POD-side tokens, and tokened direct URLs.

* Viewer tokens are signed with the pod's stream secret (the portal-wide ``POD_STREAM_SECRET``
  when the pod has none), bound to user, pod and camera.
* The portal never forwards a viewer's token to a POD: it signs its own short-lived POD-side
  token per pod and camera (:class:`UpstreamTokens`) — for recorded footage one per request,
  ``scope="footage"`` for exactly the range asked (:meth:`UpstreamTokens.footage`).
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable
from urllib.parse import quote, urlsplit

from platebridge.core.tokens import StreamClaims, sign_stream_token
from platebridge.portal.errors import ApiError
from platebridge.portal.models import Camera, Pod, User
from platebridge.portal.settings import PortalSettings

#: ``user_id`` claim of the portal's own POD-side tokens (the POD logs it, nothing else).
PORTAL_USER_ID = "platebridge-portal"


def stream_secret(pod: Pod, settings: PortalSettings) -> str:
    """The pod's own stream secret, else the portal-wide fallback; 503 when neither exists."""
    if pod.stream_token_secret:
        return pod.stream_token_secret
    if settings.pod_stream_secret is not None and settings.pod_stream_secret.get_secret_value():
        return settings.pod_stream_secret.get_secret_value()
    raise ApiError(503, "no_stream_secret", "this pod has no stream secret configured")


def footage_claims(
    user_id: str, pod: Pod, camera_id: str, exp: int, now: float, start: float, end: float
) -> StreamClaims:
    """Footage claims for ``[start, end]``, widened to whole seconds (the token's integers)."""
    low, high = math.floor(start), math.ceil(end)
    return StreamClaims(
        user_id, pod.pod_id, camera_id, exp=exp, iat=int(now), scope="footage", start=low,
        end=max(high, low + 1),
    )  # fmt: skip


def sign_viewer_token(
    user: User,
    pod: Pod,
    camera: Camera,
    settings: PortalSettings,
    now: float,
    footage: tuple[float, float] | None = None,
) -> tuple[str, int]:
    """A viewer token for ``camera`` and its ``exp``; 503 when the pod has no secret.
    ``footage``: a footage token for that range instead of a live one."""
    exp = math.ceil(now) + settings.stream_token_ttl  # lives at least the configured lifetime
    if footage is None:
        claims = StreamClaims(str(user.id), pod.pod_id, camera.camera_id, exp=exp, iat=int(now))
    else:
        claims = footage_claims(str(user.id), pod, camera.camera_id, exp, now, *footage)
    return sign_stream_token(claims, stream_secret(pod, settings)), exp


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

    def for_camera(self, pod: Pod, camera_id: str, settings: PortalSettings) -> str:
        """The token the portal presents to ``pod`` for ``camera_id``."""
        return self.token(pod, camera_id, stream_secret(pod, settings))

    def footage(
        self, pod: Pod, camera_id: str, settings: PortalSettings, start: float, end: float
    ) -> str:
        """A POD-side footage token for ``[start, end]`` only (signed per request: the range
        differs every time, and an HMAC costs microseconds)."""
        now = time.time()
        claims = footage_claims(
            PORTAL_USER_ID, pod, camera_id, int(now) + self.ttl, now, start, end
        )
        return sign_stream_token(claims, stream_secret(pod, settings))


def direct_url(camera: Camera, pod: Pod, token: str) -> str | None:
    """``{stream_url}?token=…`` for the browser to fetch from the POD, when the pod has one."""
    if not pod.ip_address or not camera.stream_url:
        return None
    return f"{camera.stream_url}?token={quote(token, safe='')}"


def direct_live_url(camera: Camera, pod: Pod, token: str) -> str | None:
    """``ws(s)://POD/live/{camera}/ws?token=…``: the browser's live WebSocket to the POD (direct
    mode), on the host and port of the camera's ``stream_url``."""
    if not pod.ip_address or not camera.stream_url:
        return None
    parts = urlsplit(camera.stream_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    camera_path = quote(camera.camera_id, safe="")
    return f"{scheme}://{parts.netloc}/live/{camera_path}/ws?token={quote(token, safe='')}"


#: A direct-mode camera's tokened URLs: (HLS ``direct_url``, live ``live_url``).
DirectUrls = tuple[str, str | None]


def direct_url_signer(
    user: User, settings: PortalSettings, issued: list[tuple[str, str]]
) -> Callable[[Camera, Pod], DirectUrls | None]:
    """For the camera list: tokened direct URLs (HLS and live) for cameras of direct-mode pods.

    Returns ``sign(camera, pod) -> (direct_url, live_url) | None``; every token issued is
    appended to ``issued`` as ``(pod_id, camera_id)`` so the caller can record it in the audit
    trail.
    """
    now = time.time()

    def sign(camera: Camera, pod: Pod) -> DirectUrls | None:
        if pod.stream_mode != "direct" or camera.status == "inactive":
            return None
        try:
            token, _ = sign_viewer_token(user, pod, camera, settings, now)
        except ApiError:
            return None
        url = direct_url(camera, pod, token)
        if url is None:
            return None
        issued.append((pod.pod_id, camera.camera_id))
        return url, direct_live_url(camera, pod, token)

    return sign
