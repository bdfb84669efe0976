"""Issuing a viewer token (``POST /api/pod/stream-token``): tenant-scoped, only for a watchable
camera of an online pod, recorded as ``token_issued`` in the same transaction."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from urllib.parse import quote

from platebridge.portal.db import Database
from platebridge.portal.errors import ApiError
from platebridge.portal.models import User
from platebridge.portal.schemas import StreamToken
from platebridge.portal.scoping import get_camera_for_user
from platebridge.portal.services import audit
from platebridge.portal.settings import PortalSettings
from platebridge.portal.streaming.authorize import require_online
from platebridge.portal.streaming.live import LiveStream, live_path, stream_query
from platebridge.portal.streaming.select import pod_base
from platebridge.portal.streaming.state import StreamingState
from platebridge.portal.streaming.tokens import direct_live_url, direct_url, sign_viewer_token


def proxy_path(pod_id: str, camera_id: str, token: str | None) -> str:
    """The portal's playlist URL for a camera, with the viewer token when there is one."""
    query = f"camera_id={quote(camera_id, safe='')}"
    if token is not None:
        query += f"&token={quote(token, safe='')}"
    return f"/api/pod/proxy-stream/{quote(pod_id, safe='')}?{query}"


async def issue_stream_token(
    db: Database,
    user: User,
    pod_id: str,
    camera_id: str,
    settings: PortalSettings,
    state: StreamingState,
    ip: str | None,
    stream: LiveStream = "main",
) -> StreamToken:
    """Issue a viewer token (and record it); 404 outside the user's company, 409 not watchable.
    ``stream``: which stream ``live_url`` plays (the token itself is the camera's, either)."""
    async with db.write() as session:
        camera, pod = await get_camera_for_user(session, user, pod_id, camera_id)
        require_online(pod, settings)
        if camera.status == "inactive":
            raise ApiError(
                409, "camera_inactive", f"camera {camera_id!r} is not reported by its pod"
            )
        mode = state.token_method(pod)
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
    direct_live = direct_live_url(camera, pod, token)
    return {
        "token": token,
        "expires_at": datetime.fromtimestamp(exp, UTC).isoformat().replace("+00:00", "Z"),
        "expires_in": int(exp - now),
        "stream_mode": mode,
        "proxy_url": proxy_path(pod.pod_id, camera.camera_id, token),
        "direct_url": direct_url(camera, pod, token),
        "live_url": (
            (None if direct_live is None else direct_live + stream_query(stream))
            if mode == "direct"
            else live_path(pod.pod_id, camera.camera_id, token, stream)
        ),
    }
