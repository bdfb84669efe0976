"""Recorded footage for viewers: ``POST /api/footage-token`` and the relay routes
``/api/footage/{pod_id}`` (spans), ``/media`` (fMP4 from a time), ``/export`` (one MP4) and
``/vod.m3u8`` (HLS VOD fallback).

Like the live proxy routes they are ``@public`` for the app-wide guard and authorise
themselves: the session, or a *footage* token from ``/api/footage-token`` in the query (a live
token is refused, 403 ``wrong_scope``). A role without the ``footage`` capability (``viewer``)
gets 403 — after the tenant lookup, so another company's camera stays 404. See docs/portal.md.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, FastAPI, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse, Response

from platebridge.portal.body_stream import BodyStream
from platebridge.portal.deps import (
    ClientIp,
    CurrentUser,
    Db,
    Settings,
    Streaming,
    public,
)
from platebridge.portal.routes.stream_deps import (
    NO_STORE,
    ExportStream,
    FootageStream,
    TimeParam,
)
from platebridge.portal.schemas import FootageToken
from platebridge.portal.streaming.audit_events import record_footage, record_footage_viewing
from platebridge.portal.streaming.footage import (
    MAX_EXPORT,
    MAX_VOD,
    fetch_spans,
    fetch_vod,
    parse_duration,
    parse_part,
    parse_range,
    parse_time,
    stream_export,
    stream_media,
    within_token,
)
from platebridge.portal.streaming.footage_token import issue_footage_token
from platebridge.portal.streaming.relay import PLAYLIST_MEDIA_TYPE

router = APIRouter(prefix="/api", tags=["footage"])

FromParam = Annotated[str | None, Query(alias="from", max_length=32)]


class FootageTokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pod_id: str = Field(min_length=1, max_length=64, description="The pod's wire id.")
    camera_id: str = Field(min_length=1, max_length=64, description="The camera's wire id.")
    from_: float = Field(alias="from", description="Start of the range, epoch seconds.")
    to: float = Field(description="End of the range, epoch seconds (at most 7 days later).")


@router.post("/footage-token", response_model=FootageToken)
async def footage_token(
    body: FootageTokenRequest,
    user: CurrentUser,
    db: Db,
    settings: Settings,
    state: Streaming,
    ip: ClientIp,
) -> Response:
    result = await issue_footage_token(
        db, user, body.pod_id, body.camera_id, body.from_, body.to, settings, state, ip
    )
    return JSONResponse(result, headers={"Cache-Control": "no-store"})


@router.get("/footage/{pod_id}")
@public
async def footage_spans(
    stream: FootageStream, start: FromParam = None, to: TimeParam = None
) -> Response:
    """Recorded spans and gaps of the camera in ``[from, to]`` (the POD's list)."""
    low, high = within_token(stream.access, *parse_range(start, to))
    data, _ = await fetch_spans(stream, low, high)
    return JSONResponse(data, headers=NO_STORE)


@router.get(
    "/footage/{pod_id}/media",
    response_class=BodyStream,
    responses={200: {"content": {"video/mp4": {}}, "description": "fMP4 from `start`"}},
)
@public
async def footage_media(
    db: Db,
    stream: FootageStream,
    ip: ClientIp,
    start: TimeParam = None,
    duration: TimeParam = None,
    part: Annotated[str | None, Query(max_length=16)] = None,
) -> BodyStream:
    at = parse_time("start", start)
    length = parse_duration(duration)
    media_part = parse_part(part)
    at, end = within_token(stream.access, at, at + length)
    response, up = await stream_media(stream, at, max(end - at, 1.0), media_part)
    await record_footage_viewing(db, stream.access, stream.state, ip, up.method, (at, end))
    return response


@router.get(
    "/footage/{pod_id}/export",
    response_class=BodyStream,
    responses={200: {"content": {"video/mp4": {}}, "description": "one MP4 of the range"}},
)
@public
async def footage_export(
    db: Db, stream: ExportStream, ip: ClientIp, start: FromParam = None, to: TimeParam = None
) -> BodyStream:
    low, high = parse_range(start, to, MAX_EXPORT)
    low, high = within_token(stream.access, low, high)
    response, up = await stream_export(stream, low, high)
    await record_footage(db, stream.access, "footage_export", up.method, ip, (low, high))
    return response


@router.get(
    "/footage/{pod_id}/vod.m3u8",
    response_class=Response,
    responses={200: {"content": {PLAYLIST_MEDIA_TYPE: {}}, "description": "HLS VOD playlist"}},
)
@public
async def footage_vod(
    stream: FootageStream, start: FromParam = None, to: TimeParam = None
) -> Response:
    low, high = within_token(stream.access, *parse_range(start, to, MAX_VOD))
    text, _ = await fetch_vod(stream, low, high)
    return Response(text, media_type=PLAYLIST_MEDIA_TYPE, headers=NO_STORE)


def install_footage(app: FastAPI) -> None:
    """Add the footage token and relay routes (after the streaming routes: same handlers)."""
    app.include_router(router)
