"""The POD's recorded-footage routes (issue 13, docs/recording.md "API"):

- ``GET /recordings/{camera_id}?token&from&to``: recorded spans and gaps (JSON);
- ``GET /recordings/{camera_id}/media?token&start&duration``: fMP4 from the keyframe at or
  before ``start`` (init segment + fragments, timeline rebased to 0; ``X-PlateBridge-*``
  headers place it on the wall clock);
- ``GET /recordings/{camera_id}/export?token&from&to``: one MP4 (stream copy, faststart);
- ``GET /recordings/{camera_id}/vod.m3u8?token&from&to``: an HLS VOD playlist of ``media``
  requests (``part=init`` / ``part=fragments``: :mod:`platebridge.pod.recording.vod`).

Only **footage** tokens (``scope: footage``) of this camera whose range covers the request are
taken (live tokens: 403 ``wrong_scope``). Parameters are checked here (400 ``bad_request``);
the work is in :mod:`platebridge.pod.recording` (``media``, ``playback``, ``export``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import os
import time
import uuid
import weakref
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, BinaryIO, cast, get_args

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from platebridge.core.bmff import Fmp4Error
from platebridge.core.tokens import StreamClaims
from platebridge.pod.context import ApiError, Context, PodContext
from platebridge.pod.recording import media as media_mod
from platebridge.pod.recording.export import ExportError, plan_export, run_export, sweep
from platebridge.pod.recording.index import MAX_FILE_SECONDS, RecordingIndex
from platebridge.pod.recording.recorder import Recording
from platebridge.pod.recording.vod import playlist

log = logging.getLogger("platebridge.pod.playback")

MAX_LIST_SECONDS = 7 * 86400
MAX_EXPORT_SECONDS = 1800
#: A VOD playlist covers at most a day (1 440 files of 60 s, ~15 000 segments).
MAX_VOD_SECONDS = 86400
MIN_DURATION, MAX_DURATION, DEFAULT_DURATION = 1.0, 60.0, 10.0
#: Exports running at once (each an ffmpeg); more are refused 429 with Retry-After.
MAX_EXPORTS = 2
EXPORT_DIR = ".exports"
MP4 = "video/mp4"
PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
PARTS: tuple[str, ...] = get_args(media_mod.Part)
NO_STORE = {"Cache-Control": "no-store"}
#: Response headers a browser on another origin (the portal's page, ``direct``) may read.
PLAYBACK_HEADERS = (
    "X-PlateBridge-Media-Start",
    "X-PlateBridge-Media-End",
    "X-PlateBridge-Next",
    "X-PlateBridge-Live-Edge",
    "Content-Disposition",
)

router = APIRouter()


def _number(name: str, raw: str | None, default: float | None = None) -> float:
    if raw is None or raw == "":
        if default is None:
            raise ApiError(400, "bad_request", f"{name}: required (epoch seconds)")
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ApiError(400, "bad_request", f"{name}: not a number") from None
    if not math.isfinite(value) or not 0 <= value < 2**40:
        raise ApiError(400, "bad_request", f"{name}: out of range")
    return value


def _range(raw_from: str | None, raw_to: str | None, longest: float) -> tuple[float, float]:
    start, end = _number("from", raw_from), _number("to", raw_to)
    if not 0 < end - start <= longest:
        raise ApiError(400, "bad_request", f"to - from must be > 0 and ≤ {longest:g} s")
    return start, end


def _footage(ctx: PodContext, camera_id: str, token: str | None) -> StreamClaims:
    claims = ctx.authorize(token, "footage")
    if camera_id not in ctx.cameras:
        raise ApiError(404, "not_found", "this POD has no camera with that id")
    if claims.camera_id != camera_id:
        raise ApiError(403, "wrong_camera", "footage token was issued for another camera")
    return claims


def _covered(claims: StreamClaims, start: float, end: float) -> None:
    if not claims.covers(start, end):
        raise ApiError(403, "out_of_range", "the footage token does not cover this time range")


def _recording(request: Request) -> tuple[Recording, RecordingIndex]:
    recording: Recording | None = request.app.state.recording
    if recording is None or recording.index is None:
        raise ApiError(503, "recording_off", "this POD does not record")
    return recording, recording.index


def _ranged(
    ctx: PodContext,
    request: Request,
    camera_id: str,
    token: str | None,
    to: str | None,
    longest: float,
) -> tuple[Recording, RecordingIndex, float, float]:
    """The checks of a ``from``/``to`` route: the footage token of this camera, a valid range
    it covers, a POD that records."""
    claims = _footage(ctx, camera_id, token)
    start, end = _range(request.query_params.get("from"), to, longest)
    _covered(claims, start, end)
    recording, index = _recording(request)
    return recording, index, start, end


def _wall(value: float) -> str:
    return f"{value:.3f}"


def _bounds(index: RecordingIndex, camera_id: str, now: float) -> tuple[float | None, float | None]:
    """(oldest, newest) recorded time of the camera, without a scan of all its rows."""
    oldest = index.oldest(1, camera_id)
    if not oldest:
        return None, None
    recent = index.files(camera_id, now - MAX_FILE_SECONDS, now + 60)
    newest = max(f.end for f in recent) if recent else index.summary(camera_id).newest
    return oldest[0].start, newest


@router.get("/recordings/{camera_id}")
async def spans(
    ctx: Context,
    request: Request,
    camera_id: str,
    token: str | None = None,
    to: str | None = None,
) -> dict[str, Any]:
    _, index, start, end = _ranged(ctx, request, camera_id, token, to, MAX_LIST_SECONDS)
    now = time.time()
    found = await asyncio.to_thread(index.spans, camera_id, start, end)
    oldest, newest = await asyncio.to_thread(_bounds, index, camera_id, now)
    return {
        "camera_id": camera_id,
        "from": start,
        "to": end,
        "spans": [
            {"start": s.start, "end": s.end, "kind": s.kind, "reason": s.reason} for s in found
        ],
        "oldest": oldest,
        "newest": newest,
    }


def _guarded(chunks: Iterator[bytes], what: str) -> Iterator[bytes]:
    """``chunks``, ending the body quietly if the file changed under it (retention, repair)."""
    try:
        yield from chunks
    except (OSError, Fmp4Error) as exc:
        log.warning("playback: %s cut short: %s", what, type(exc).__name__)


@router.get("/recordings/{camera_id}/media")
async def media(
    ctx: Context,
    request: Request,
    camera_id: str,
    token: str | None = None,
    start: str | None = None,
    duration: str | None = None,
    part: str | None = None,
) -> Response:
    claims = _footage(ctx, camera_id, token)
    if part not in (None, *PARTS):
        raise ApiError(400, "bad_request", f"part: one of {', '.join(PARTS)}")
    at = _number("start", start)
    length = _number("duration", duration, DEFAULT_DURATION)
    if not MIN_DURATION <= length <= MAX_DURATION:
        raise ApiError(400, "bad_request", f"duration: {MIN_DURATION:g}..{MAX_DURATION:g} s")
    _covered(claims, at, at + length)
    _, index = _recording(request)
    assert claims.start is not None and claims.end is not None
    allowed = (float(claims.start), float(claims.end))
    found = await asyncio.to_thread(
        media_mod.prepare, index, camera_id, at, length, allowed, time.time()
    )
    if found is None:
        raise ApiError(404, "no_recording", "nothing is recorded at or after this time")
    if part is not None:
        found = dataclasses.replace(found, part=cast(media_mod.Part, part))
    headers = NO_STORE | {
        "Content-Length": str(found.length),
        "X-PlateBridge-Media-Start": _wall(found.plan.media_start),
        "X-PlateBridge-Media-End": _wall(found.plan.media_end),
    }
    if found.next is not None:
        headers["X-PlateBridge-Next"] = _wall(found.next)
    if found.live_edge:
        headers["X-PlateBridge-Live-Edge"] = "1"
    return StreamingResponse(
        _guarded(media_mod.body(found), "media"), media_type=MP4, headers=headers
    )


class ExportSlots:
    """Exports running now (one event loop: a counter is enough)."""

    def __init__(self, limit: int) -> None:
        self.limit, self.used = limit, 0


def _slots(request: Request) -> ExportSlots:
    slots: ExportSlots | None = getattr(request.app.state, "export_slots", None)
    if slots is None:
        slots = request.app.state.export_slots = ExportSlots(MAX_EXPORTS)
    return slots


def _read_all(f: BinaryIO) -> Iterator[bytes]:
    with f:
        while chunk := f.read(media_mod.CHUNK):
            yield chunk


@router.get("/recordings/{camera_id}/export")
async def export(
    ctx: Context,
    request: Request,
    camera_id: str,
    token: str | None = None,
    to: str | None = None,
) -> Response:
    recording, index, start, end = _ranged(ctx, request, camera_id, token, to, MAX_EXPORT_SECONDS)
    files = await asyncio.to_thread(index.files, camera_id, start, end)
    plan = plan_export(files, start, end)
    if plan is None:
        raise ApiError(404, "no_recording", "nothing is recorded in this time range")
    slots = _slots(request)
    if slots.used >= slots.limit:
        raise ApiError(429, "busy", "too many exports at once, try again", {"Retry-After": "5"})
    work = recording.config.recording_dir / EXPORT_DIR
    slots.used += 1
    try:
        await asyncio.to_thread(sweep, work, 3600, time.time())
        out = await run_export(ctx.config.ffmpeg_path, plan, work, uuid.uuid4().hex)
    except (ExportError, OSError) as exc:
        log.warning("playback: export of %s failed: %s", camera_id, exc)
        raise ApiError(503, "export_failed", "the export could not be made") from None
    finally:
        slots.used -= 1
    f = out.open("rb")
    size = os.fstat(f.fileno()).st_size
    out.unlink()  # the open file is served; its space is freed when it is closed
    stamp = datetime.fromtimestamp(start, UTC).strftime("%Y%m%dT%H%M%SZ")
    headers = NO_STORE | {
        "Content-Length": str(size),
        "Content-Disposition": f'attachment; filename="{camera_id}-{stamp}.mp4"',
    }
    chunks = _read_all(f)
    weakref.finalize(chunks, f.close)  # a body never started still closes the file
    return StreamingResponse(chunks, media_type=MP4, headers=headers)


@router.get("/recordings/{camera_id}/vod.m3u8")
async def vod(
    ctx: Context,
    request: Request,
    camera_id: str,
    token: str | None = None,
    to: str | None = None,
) -> Response:
    _, index, start, end = _ranged(ctx, request, camera_id, token, to, MAX_VOD_SECONDS)
    files = await asyncio.to_thread(index.files, camera_id, start, end)
    assert token is not None
    text = playlist(files, start, end, token)
    if "#EXTINF" not in text:
        raise ApiError(404, "no_recording", "nothing is recorded in this time range")
    return Response(text, media_type=PLAYLIST_TYPE, headers=NO_STORE)
