"""The footage page of a camera: a timeline of what its POD recorded, a player for any moment,
clips to download or share (docs/web.md "Footage", docs/recording.md "Timeline").

The page only renders the frame; ``static/footage.js`` fetches the spans
(``/api/footage/{pod}``) and ``static/playback.js`` plays ``/api/footage/{pod}/media`` chunks
through MSE, both with the session cookie (the portal's relay routes; every method works the
same). Who may see footage is the role capability; a live-only role gets a 403 page (after the
404 check, so another company's camera stays unknown to it).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from platebridge.portal.deps import CurrentUser, Db, Settings, page
from platebridge.portal.errors import ApiError
from platebridge.portal.listing import list_cameras, list_pods
from platebridge.portal.pages.render import render
from platebridge.portal.pages.views import with_badges
from platebridge.portal.scoping import get_camera_for_user, require_capability

router = APIRouter(include_in_schema=False)
Slug = Annotated[str, Path(max_length=64)]

#: Frame step when the camera's rate is unknown (1/25 s).
DEFAULT_FPS = 25.0
#: The keyframe interval when unknown: the player asks that much before a seek's time.
DEFAULT_GOP = 2.0
NO_FOOTAGE = "Your role sees live video only: recorded footage needs the manager or admin role."


def _recording(raw: str | None) -> dict[str, Any] | None:
    """The camera's recording state from its last heartbeat (``CameraRecording``), if any."""
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _media_number(cam: dict[str, Any], key: str, low: float, high: float) -> float | None:
    """A number the heartbeat reported of what the camera sends (``fps``, ...), if plausible."""
    media = cam.get("media") or {}
    value = media.get(key) if isinstance(media, dict) else None
    return float(value) if isinstance(value, int | float) and low <= value <= high else None


@router.get("/cameras/{pod_id}/{camera_id}/footage")
@page
async def footage_page(
    request: Request, user: CurrentUser, db: Db, settings: Settings, pod_id: Slug, camera_id: Slug
) -> Response:
    async with db.read() as session:
        camera, _pod = await get_camera_for_user(session, user, pod_id, camera_id)  # 404 first
        try:
            require_capability(user, "footage")
        except ApiError as exc:  # the page says it in words
            raise ApiError(403, "forbidden", NO_FOOTAGE) from exc
        rows = await list_cameras(session, user, settings.offline_after, pod_id=pod_id)
        pods = await list_pods(session, user, settings.offline_after, pod_id=pod_id)
    cam = next(c for c in with_badges(rows) if c["id"] == camera_id)
    return render(
        request,
        "footage.html",
        cam=cam,
        pod=pods[0] if pods else None,
        recording=_recording(camera.recording),
        fps=_media_number(cam, "fps", 1, 240) or DEFAULT_FPS,
        gop=_media_number(cam, "keyframe_interval", 0.1, 10) or DEFAULT_GOP,
    )
