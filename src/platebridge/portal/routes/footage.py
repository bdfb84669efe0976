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

from fastapi import APIRouter, Depends, FastAPI, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse, Response

from platebridge.portal.body_stream import BodyStream
from platebridge.portal.deps import (
    ClientIp,
    CurrentUser,
    Db,
    SessionToken,
    Settings,
    Streaming,
    public,
)
from platebridge.portal.schemas import FootageToken
from platebridge.portal.scoping import Capability
from platebridge.portal.streaming.audit_events import record_footage, record_footage_viewing
from platebridge.portal.streaming.authorize import authorize_stream
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
from platebridge.portal.streaming.path import PodStream, open_stream
from platebridge.portal.streaming.relay import PLAYLIST_MEDIA_TYPE

router = APIRouter(prefix="/api", tags=["footage"])

PodId = Annotated[str, Path(min_length=1, max_length=64)]
CameraParam = Annotated[str | None, Query(max_length=64)]
TokenParam = Annotated[str | None, Query(max_length=2048)]
#: Times stay strings until ``streaming.footage`` parses them: a bad one is 400, not 422.
TimeParam = Annotated[str | None, Query(max_length=32)]
FromParam = Annotated[str | None, Query(alias="from", max_length=32)]
_NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


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


async def _open(
    need: Capability,
    db: Db,
    settings: Settings,
    state: Streaming,
    login: SessionToken,
    pod_id: PodId,
    camera_id: CameraParam,
    token: TokenParam,
) -> PodStream:
    return await open_stream(
        authorize=lambda: authorize_stream(
            db, settings, state, pod_id, camera_id, login=login, token=token, need=need
        ),
        state=state,
        settings=settings,
    )


async def _open_footage(
    db: Db,
    settings: Settings,
    state: Streaming,
    login: SessionToken,
    pod_id: PodId,
    camera_id: CameraParam = None,
    token: TokenParam = None,
) -> PodStream:
    """The one streaming path's first steps, needing the ``footage`` capability."""
    return await _open("footage", db, settings, state, login, pod_id, camera_id, token)


async def _open_export(
    db: Db,
    settings: Settings,
    state: Streaming,
    login: SessionToken,
    pod_id: PodId,
    camera_id: CameraParam = None,
    token: TokenParam = None,
) -> PodStream:
    """The same, needing the ``export`` capability."""
    return await _open("export", db, settings, state, login, pod_id, camera_id, token)


Footage = Annotated[PodStream, Depends(_open_footage)]
Export = Annotated[PodStream, Depends(_open_export)]


@router.get("/footage/{pod_id}")
@public
async def footage_spans(stream: Footage, start: FromParam = None, to: TimeParam = None) -> Response:
    """Recorded spans and gaps of the camera in ``[from, to]`` (the POD's list)."""
    low, high = within_token(stream.access, *parse_range(start, to))
    data, _ = await fetch_spans(stream, low, high)
    return JSONResponse(data, headers=_NO_STORE)


@router.get(
    "/footage/{pod_id}/media",
    response_class=BodyStream,
    responses={200: {"content": {"video/mp4": {}}, "description": "fMP4 from `start`"}},
)
@public
async def footage_media(
    db: Db,
    stream: Footage,
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
    db: Db, stream: Export, ip: ClientIp, start: FromParam = None, to: TimeParam = None
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
async def footage_vod(stream: Footage, start: FromParam = None, to: TimeParam = None) -> Response:
    low, high = within_token(stream.access, *parse_range(start, to, MAX_VOD))
    text, _ = await fetch_vod(stream, low, high)
    return Response(text, media_type=PLAYLIST_MEDIA_TYPE, headers=_NO_STORE)


def install_footage(app: FastAPI) -> None:
    """Add the footage token and relay routes (after the streaming routes: same handlers)."""
    app.include_router(router)
