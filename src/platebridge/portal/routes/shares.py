"""Share links (``services.shares``): ``POST/GET /api/shares``, ``DELETE /api/shares/{id}``
for users whose role may share (admin, manager), and the public, no-login
``/s/{secret}/clip.mp4`` (the clip's export) and ``/s/{secret}/media`` (fMP4 for a player,
clamped to the clip); the page ``/s/{secret}`` is :mod:`platebridge.portal.pages.share`.

The public routes reach the POD through the one streaming path (``streaming.path``) as the
link's creator, for the clip's range only. Unknown links are 404, expired, revoked or voided
ones 410 (JSON; the page: a plain message). Every open is audited ``share_opened``.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Path, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse, Response

from platebridge.portal.body_stream import BodyStream
from platebridge.portal.deps import ClientIp, CurrentUser, Db, Settings, Streaming, public
from platebridge.portal.models import Pod
from platebridge.portal.routes.stream_deps import TimeParam
from platebridge.portal.services import audit, shares
from platebridge.portal.services.user_mail import base_url_for
from platebridge.portal.streaming.access_cache import Access
from platebridge.portal.streaming.footage import (
    parse_duration,
    parse_time,
    stream_export,
    stream_media,
)
from platebridge.portal.streaming.path import PodStream, open_stream
from platebridge.portal.streaming.state import StreamingState

router = APIRouter(tags=["shares"])

ShareId = Annotated[str, Path(max_length=64)]
SECRET_MAX = 100
Secret = Annotated[str, Path(max_length=SECRET_MAX)]
#: The public answers: never cached, never indexed, the secret URL never sent as a referrer.
PUBLIC_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
}


class ShareRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pod_id: str = Field(min_length=1, max_length=64, description="The pod's wire id.")
    camera_id: str = Field(min_length=1, max_length=64, description="The camera's wire id.")
    from_: float = Field(alias="from", description="Start of the clip, epoch seconds.")
    to: float = Field(description="End of the clip, epoch seconds (at most 30 min later).")
    expires_in_hours: int = Field(description="Lifetime of the link, 1 … 168 hours.")


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def share_method(state: StreamingState, pod: Pod) -> audit.Method:
    """Shares are always relayed by the portal: through the tunnel or the proxy."""
    return "tunnel" if state.token_method(pod) == "tunnel" else "proxy"


@router.post("/api/shares", status_code=201)
async def create_share(
    body: ShareRequest, request: Request, user: CurrentUser, db: Db, settings: Settings,
    state: Streaming, ip: ClientIp,
) -> Response:  # fmt: skip
    async with db.write() as session:
        made = await shares.create_share(
            session, user, body.pod_id, body.camera_id, body.from_, body.to,
            body.expires_in_hours,
        )  # fmt: skip
        await session.flush()
        method = share_method(state, made.pod)
        event = shares.share_event(
            made.share, made.camera, made.pod, "share_created", method, ip, user
        )
        session.add(event)
    base = base_url_for(settings, str(request.base_url))
    result = {
        "id": str(made.share.id),
        "url": f"{base}{shares.PUBLIC_PATH}{made.secret}",
        "expires_at": iso(made.share.expires_at),
    }
    return JSONResponse(result, status_code=201, headers={"Cache-Control": "no-store"})


@router.get("/api/shares")
async def list_shares(user: CurrentUser, db: Db) -> dict[str, Any]:
    async with db.read() as session:
        return {"shares": await shares.list_shares(session, user)}


@router.delete("/api/shares/{share_id}")
async def revoke_share(
    share_id: ShareId, user: CurrentUser, db: Db, state: Streaming, ip: ClientIp
) -> dict[str, Any]:
    async with db.write() as session:
        share, camera, pod, revoked = await shares.revoke_share(session, user, share_id)
        if revoked:
            method = share_method(state, pod)
            event = shares.share_event(share, camera, pod, "share_revoked", method, ip, user)
            session.add(event)
    return shares.share_json(share, camera, pod, datetime.now(UTC))


# --- public: the link itself ------------------------------------------------------------------


async def opened_share(db: Db, secret: str) -> shares.Opened:
    async with db.read() as session:
        return await shares.open_share(session, secret)


async def _stream(opened: shares.Opened, state: StreamingState, settings: Settings) -> PodStream:
    """The one streaming path for the link: as its creator, the pod required online."""
    clip = (math.floor(opened.share.clip_start), math.ceil(opened.share.clip_end))
    access = Access(opened.creator, opened.pod, opened.camera, None, "footage", clip)

    async def authorize() -> Access:
        return access

    return await open_stream(authorize=authorize, state=state, settings=settings)


async def audit_open(db: Db, opened: shares.Opened, method: audit.Method, ip: str | None) -> None:
    async with db.write() as session:
        session.add(
            shares.share_event(opened.share, opened.camera, opened.pod, "share_opened", method, ip)
        )


@router.get(
    "/s/{secret}/clip.mp4",
    response_class=BodyStream,
    responses={200: {"content": {"video/mp4": {}}, "description": "the shared clip"}},
)
@public
async def share_clip(
    secret: Secret, db: Db, state: Streaming, settings: Settings, ip: ClientIp
) -> BodyStream:
    opened = await opened_share(db, secret)
    stream = await _stream(opened, state, settings)
    response, up = await stream_export(stream, opened.share.clip_start, opened.share.clip_end)
    await audit_open(db, opened, up.method, ip)
    response.headers.update(PUBLIC_HEADERS)
    return response


@router.get(
    "/s/{secret}/media",
    response_class=BodyStream,
    responses={200: {"content": {"video/mp4": {}}, "description": "fMP4 within the clip"}},
)
@public
async def share_media(
    secret: Secret,
    db: Db,
    state: Streaming,
    settings: Settings,
    ip: ClientIp,
    start: TimeParam = None,
    duration: TimeParam = None,
) -> BodyStream:
    opened = await opened_share(db, secret)
    share = opened.share
    at = parse_time("start", start) if start else share.clip_start
    at = min(max(at, share.clip_start), share.clip_end - shares.MIN_CLIP)  # inside the clip
    length = max(shares.MIN_CLIP, min(parse_duration(duration), share.clip_end - at))
    stream = await _stream(opened, state, settings)
    response, up = await stream_media(stream, at, length)
    if state.viewings.starts_viewing(("share", str(share.id), ip or "")):
        await audit_open(db, opened, up.method, ip)
    response.headers.update(PUBLIC_HEADERS)
    return response


def install_shares(app: FastAPI) -> None:
    app.include_router(router)
