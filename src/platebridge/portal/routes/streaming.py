"""Streams for viewers: stream tokens, the proxied playlist and segments, snapshots.

The proxy routes are ``@public`` for the app-wide guard because they authorise themselves: by
the user's session *or* by a stream token in the query (HLS players such as ffmpeg, VLC or
Safari's native player send neither cookies nor headers). See ``docs/streaming.md``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, FastAPI, Path
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse, Response, StreamingResponse

from platebridge.portal.deps import (
    ClientIp,
    CurrentUser,
    Db,
    Settings,
    Streaming,
    public,
)
from platebridge.portal.errors import ApiError
from platebridge.portal.routes import audit as audit_routes
from platebridge.portal.routes.live import install_live
from platebridge.portal.routes.stream_deps import NO_STORE, LiveStream
from platebridge.portal.schemas import StreamToken
from platebridge.portal.streaming.audit_events import record_stream_started
from platebridge.portal.streaming.hls_rewrite import SEGMENT_NAME, PlaylistError, rewrite_playlist
from platebridge.portal.streaming.hls_rewrite import segment_uri_for as portal_segment_uri_for
from platebridge.portal.streaming.issue_token import issue_stream_token
from platebridge.portal.streaming.relay import PLAYLIST_MEDIA_TYPE
from platebridge.portal.streaming.relay_errors import UpstreamError, upstream_error_handler
from platebridge.portal.streaming.select import Upstream
from platebridge.portal.streaming.snapshot import fetch_snapshot

router = APIRouter(prefix="/api/pod", tags=["streaming"])


class StreamTokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pod_id: str = Field(min_length=1, max_length=64, description="The pod's wire id.")
    camera_id: str = Field(min_length=1, max_length=64, description="The camera's wire id.")
    stream: Literal["main", "sub"] = Field(
        default="main",
        description="Which stream the live_url plays: 'main', or 'sub' (the camera's "
        "substream, for grids; a camera without one plays its main stream).",
    )


@router.post("/stream-token", response_model=StreamToken)  # documents the no-store body
async def stream_token(
    body: StreamTokenRequest,
    user: CurrentUser,
    db: Db,
    settings: Settings,
    state: Streaming,
    ip: ClientIp,
) -> Response:
    result = await issue_stream_token(
        db, user, body.pod_id, body.camera_id, settings, state, ip, stream=body.stream
    )
    return JSONResponse(result, headers={"Cache-Control": "no-store"})


@router.get(
    "/proxy-stream/{pod_id}",
    response_class=Response,
    responses={200: {"content": {PLAYLIST_MEDIA_TYPE: {}}, "description": "HLS playlist"}},
)
@public
async def proxy_playlist(db: Db, stream: LiveStream, ip: ClientIp) -> Response:
    async def fetch(up: Upstream, query: str) -> str:
        return await up.relay.fetch_playlist(f"{up.base}/stream{query}")

    text, up = await stream.fetch(fetch)
    access = stream.access
    extra = {"token": access.token} if access.token else None
    uri_for = portal_segment_uri_for(access.pod.pod_id, access.camera.camera_id, extra_query=extra)
    try:
        body = rewrite_playlist(text, uri_for=uri_for)
    except PlaylistError:
        raise UpstreamError(
            502, "upstream_bad_playlist", "the POD's playlist cannot be relayed safely"
        ) from None
    await record_stream_started(db, access, stream.state, ip, up.method)
    return Response(body, media_type=PLAYLIST_MEDIA_TYPE, headers=NO_STORE)


@router.get(
    "/proxy-stream/{pod_id}/segment/{name}",
    response_class=StreamingResponse,
    responses={200: {"content": {"video/mp2t": {}}, "description": "MPEG-TS segment"}},
)
@public
async def proxy_segment(
    stream: LiveStream, name: Annotated[str, Path(max_length=128)]
) -> StreamingResponse:
    if not SEGMENT_NAME.fullmatch(name):
        raise ApiError(404, "not_found", "no such segment")

    async def fetch(up: Upstream, query: str) -> StreamingResponse:
        return await up.relay.stream_segment(f"{up.base}/stream/{stream.camera_path}/{name}{query}")

    response, _ = await stream.fetch(fetch)
    return response


@router.get(
    "/snapshot/{pod_id}",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}, "description": "the camera's latest frame"}},
)
@public
async def snapshot(stream: LiveStream) -> Response:
    async def fetch(up: Upstream, query: str) -> bytes:
        return await fetch_snapshot(up.relay, f"{up.base}/snapshot{query}")

    jpeg, _ = await stream.fetch(fetch)
    headers = {"Cache-Control": "private, max-age=2", "X-Content-Type-Options": "nosniff"}
    return Response(jpeg, media_type="image/jpeg", headers=headers)


def install_streaming(app: FastAPI) -> None:
    """Add the streaming and audit routes and the JSON answer for POD failures."""
    app.include_router(router)
    app.include_router(audit_routes.router)
    install_live(app)  # WS /api/pod/live/{pod_id}: the fMP4 live view
    app.add_exception_handler(UpstreamError, upstream_error_handler)
