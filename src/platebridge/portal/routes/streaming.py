"""Streams for viewers: stream tokens, the proxied playlist and segments, snapshots.

The proxy routes are ``@public`` for the app-wide guard because they authorise themselves: by
the user's session *or* by a stream token in the query (HLS players such as ffmpeg, VLC or
Safari's native player send neither cookies nor headers). See ``docs/streaming.md``.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse, Response, StreamingResponse

from platebridge.portal.deps import CurrentUser, Db, Settings, public
from platebridge.portal.errors import ApiError
from platebridge.portal.routes import audit as audit_routes
from platebridge.portal.streaming import access as streaming
from platebridge.portal.streaming.access import (
    authorize_stream,
    client_ip,
    require_online,
    streaming_state,
)
from platebridge.portal.streaming.hls_rewrite import SEGMENT_NAME, PlaylistError, rewrite_playlist
from platebridge.portal.streaming.hls_rewrite import segment_uri_for as portal_segment_uri_for
from platebridge.portal.streaming.relay import (
    PLAYLIST_MEDIA_TYPE,
    UpstreamError,
    upstream_error_handler,
)

router = APIRouter(prefix="/api/pod", tags=["streaming"])

PodId = Annotated[str, Path(min_length=1, max_length=64)]
CameraParam = Annotated[str | None, Query(max_length=64)]
TokenParam = Annotated[str | None, Query(max_length=2048)]
_NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


class StreamTokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pod_id: str = Field(min_length=1, max_length=64, description="The pod's wire id.")
    camera_id: str = Field(min_length=1, max_length=64, description="The camera's wire id.")


@router.post("/stream-token")
async def stream_token(
    body: StreamTokenRequest, request: Request, user: CurrentUser, db: Db, settings: Settings
) -> Response:
    result = await streaming.issue_stream_token(
        db,
        user,
        body.pod_id,
        body.camera_id,
        settings,
        streaming_state(request),
        client_ip(request),
    )
    return JSONResponse(result, headers={"Cache-Control": "no-store"})


@router.get("/proxy-stream/{pod_id}")
@public
async def proxy_playlist(
    request: Request,
    db: Db,
    settings: Settings,
    pod_id: PodId,
    camera_id: CameraParam = None,
    token: TokenParam = None,
) -> Response:
    state = streaming_state(request)
    access = await authorize_stream(request, db, settings, pod_id, camera_id, token)
    require_online(access.pod, settings)
    pod_token = streaming.upstream_token(access, settings, state)
    query = f"?token={quote(pod_token, safe='')}"
    up = await streaming.upstream_for(access.pod, state)
    try:
        text = await up.relay.fetch_playlist(f"{up.base}/stream{query}")
    except UpstreamError as exc:  # an ``auto`` pod whose address stopped answering
        state.access_cache.forget_pod(access.pod.pod_id)  # re-read the pod's row next time
        if not streaming.upstream_failed(access.pod, up, state, exc):
            raise
        up = await streaming.upstream_for(access.pod, state)
        if up.method == "proxy":
            raise
        try:
            text = await up.relay.fetch_playlist(f"{up.base}/stream{query}")
        except UpstreamError:
            state.access_cache.forget_pod(access.pod.pod_id)
            raise
    extra = {"token": access.token} if access.token else None
    uri_for = portal_segment_uri_for(access.pod.pod_id, access.camera.camera_id, extra_query=extra)
    try:
        body = rewrite_playlist(text, uri_for=uri_for)
    except PlaylistError:
        raise UpstreamError(
            502, "upstream_bad_playlist", "the POD's playlist cannot be relayed safely"
        ) from None
    await streaming.record_stream_started(db, access, state, client_ip(request), up.method)
    return Response(body, media_type=PLAYLIST_MEDIA_TYPE, headers=_NO_STORE)


@router.get("/proxy-stream/{pod_id}/segment/{name}")
@public
async def proxy_segment(
    request: Request,
    db: Db,
    settings: Settings,
    pod_id: PodId,
    name: Annotated[str, Path(max_length=128)],
    camera_id: CameraParam = None,
    token: TokenParam = None,
) -> StreamingResponse:
    state = streaming_state(request)
    access = await authorize_stream(request, db, settings, pod_id, camera_id, token)
    if not SEGMENT_NAME.fullmatch(name):
        raise ApiError(404, "not_found", "no such segment")
    require_online(access.pod, settings)
    up = await streaming.upstream_for(access.pod, state)
    pod_token = streaming.upstream_token(access, settings, state)
    camera = quote(access.camera.camera_id, safe="")
    url = f"{up.base}/stream/{camera}/{name}?token={quote(pod_token, safe='')}"
    try:
        return await up.relay.stream_segment(url)
    except UpstreamError:
        state.access_cache.forget_pod(access.pod.pod_id)  # re-read the pod's row next time
        raise


@router.get("/snapshot/{pod_id}")
@public
async def snapshot(
    request: Request,
    db: Db,
    settings: Settings,
    pod_id: PodId,
    camera_id: CameraParam = None,
    token: TokenParam = None,
) -> Response:
    state = streaming_state(request)
    access = await authorize_stream(request, db, settings, pod_id, camera_id, token)
    require_online(access.pod, settings)
    up = await streaming.upstream_for(access.pod, state)
    pod_token = streaming.upstream_token(access, settings, state)
    try:
        jpeg = await streaming.fetch_snapshot(
            up.relay, f"{up.base}/snapshot?token={quote(pod_token, safe='')}"
        )
    except UpstreamError:
        state.access_cache.forget_pod(access.pod.pod_id)  # re-read the pod's row next time
        raise
    headers = {"Cache-Control": "private, max-age=2", "X-Content-Type-Options": "nosniff"}
    return Response(jpeg, media_type="image/jpeg", headers=headers)


def install_streaming(app: FastAPI) -> None:
    """Add the streaming and audit routes and the JSON answer for POD failures."""
    app.include_router(router)
    app.include_router(audit_routes.router)
    app.add_exception_handler(UpstreamError, upstream_error_handler)
