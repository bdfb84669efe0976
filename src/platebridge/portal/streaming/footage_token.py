"""Issuing a footage token (``POST /api/footage-token``): like the live stream token, for a
range of recorded video of one camera — tenant-scoped (404), only for a role with the
``footage`` capability (403), a valid range (400), an online pod (409); recorded as
``footage_view`` (camera, range, method) in the same transaction."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

from platebridge.portal.db import Database
from platebridge.portal.models import Camera, Pod, User
from platebridge.portal.schemas import FootageToken
from platebridge.portal.scoping import get_camera_for_user, require_capability
from platebridge.portal.services import audit
from platebridge.portal.settings import PortalSettings
from platebridge.portal.streaming.authorize import require_online
from platebridge.portal.streaming.footage import media_path, parse_range, wire_time
from platebridge.portal.streaming.select import pod_base
from platebridge.portal.streaming.state import StreamingState
from platebridge.portal.streaming.tokens import sign_viewer_token


def _range_query(start: float, end: float) -> str:
    return f"from={wire_time(start)}&to={wire_time(end)}"


def portal_urls(pod: Pod, camera: Camera, token: str, start: float, end: float) -> list[str]:
    """recordings, media and export URLs on the portal's relay routes."""
    q = f"camera_id={quote(camera.camera_id, safe='')}&token={quote(token, safe='')}"
    base = f"/api/footage/{quote(pod.pod_id, safe='')}"
    rng = _range_query(start, end)
    media = media_path(pod.pod_id, camera.camera_id, token)
    return [f"{base}?{q}&{rng}", media, f"{base}/export?{q}&{rng}"]


def direct_urls(pod: Pod, camera: Camera, token: str, start: float, end: float) -> list[str]:
    """The same on the POD itself (host and port of the camera's ``stream_url``)."""
    netloc = urlsplit(camera.stream_url).netloc if pod.ip_address and camera.stream_url else ""
    if not netloc:
        return portal_urls(pod, camera, token, start, end)
    scheme = urlsplit(camera.stream_url).scheme or "http"
    base = f"{scheme}://{netloc}/recordings/{quote(camera.camera_id, safe='')}"
    tok = f"token={quote(token, safe='')}"
    rng = _range_query(start, end)
    return [f"{base}?{tok}&{rng}", f"{base}/media?{tok}", f"{base}/export?{tok}&{rng}"]


async def issue_footage_token(
    db: Database,
    user: User,
    pod_id: str,
    camera_id: str,
    start: float,
    end: float,
    settings: PortalSettings,
    state: StreamingState,
    ip: str | None,
) -> FootageToken:
    """Issue a footage token for ``[start, end]`` (and record the view)."""
    async with db.write() as session:
        camera, pod = await get_camera_for_user(session, user, pod_id, camera_id)
        require_capability(user, "footage")
        start, end = parse_range(start, end)
        require_online(pod, settings)
        method = state.token_method(pod)
        if method == "proxy":
            pod_base(pod, state.networks)  # an address the proxy refuses: say so now
        now = time.time()
        token, exp = sign_viewer_token(user, pod, camera, settings, now, footage=(start, end))
        session.add(
            audit.new_event(
                user,
                pod_id=pod.pod_id,
                camera_id=camera.camera_id,
                action="footage_view",
                method=method,
                client_ip=ip,
                range_=(start, end),
            )
        )
    urls = (direct_urls if method == "direct" else portal_urls)(pod, camera, token, start, end)
    return {
        "token": token,
        "expires_at": datetime.fromtimestamp(exp, UTC).isoformat().replace("+00:00", "Z"),
        "method": method,
        "recordings_url": urls[0],
        "media_url": urls[1],
        "export_url": urls[2],
    }
