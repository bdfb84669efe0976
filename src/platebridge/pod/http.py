"""HTTP layer of the agent: /health, token-protected /stream (HLS), /snapshot; /live is in
:mod:`live_routes`.

Thin by design: token checks are ``platebridge.core.tokens``, playlist rewriting is
:mod:`playlist`, frames come from :mod:`snapshot`. Every error is ``{"error", "detail"}`` JSON
(:mod:`platebridge.core.errors`). The routes live on a module-level router; what they need
(config, live camera state, snapshotter) reaches them through one context dependency.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from platebridge.core.errors import PlateBridgeError, error_body
from platebridge.pod.config import PodConfig
from platebridge.pod.context import ApiError, Context, PodContext
from platebridge.pod.ffmpeg import SEGMENT_NAME, camera_dir
from platebridge.pod.live_routes import router as live_router
from platebridge.pod.metrics import router as metrics_router
from platebridge.pod.playback_routes import PLAYBACK_HEADERS
from platebridge.pod.playback_routes import router as playback_router
from platebridge.pod.playlist import newest_segment, rewrite_playlist
from platebridge.pod.recording.recorder import Recording
from platebridge.pod.snapshot import SnapshotError, Snapshotter
from platebridge.pod.supervisor import CameraState

log = logging.getLogger("platebridge.pod.http")

PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
SEGMENT_TYPE = "video/mp2t"


def _json_error(
    status: int, error: str, detail: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(error, detail), status_code=status, headers=headers)


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 400: "bad_request"}


router = APIRouter()


def _interval(state: CameraState) -> float | None:
    """The measured keyframe interval of the live output (s), if measured."""
    value = state.live.keyframe_interval if state.live is not None else None
    return round(value, 2) if value is not None else None


@router.get("/health")
async def health(ctx: Context) -> dict[str, Any]:
    extra = {"tunnel": ctx.tunnel_status()} if ctx.tunnel_status is not None else {}
    return extra | {
        "status": "online",
        "pod_id": ctx.config.pod_id,
        "version": ctx.config.firmware_version,
        "uptime_seconds": round(time.monotonic() - ctx.started, 1),
        "cameras": [
            {
                "camera_id": s.camera_id,
                "name": s.name,
                "status": s.status,
                "error": s.error,
                "note": s.note,
                "live_codecs": (s.live.codecs or None) if s.live is not None else None,
                "keyframe_interval": _interval(s),
                "restarts": s.restarts,  # ffmpeg restarts since the agent started
            }
            for s in ctx.cameras.values()
        ],
    }


@router.get("/stream")
async def stream(ctx: Context, token: str | None = None) -> Response:
    claims = ctx.authorize(token)
    state = ctx.known_camera(claims.camera_id)
    text = await ctx.read_playlist(state)
    assert token is not None
    return Response(
        rewrite_playlist(text, state.camera_id, token),
        media_type=PLAYLIST_TYPE,
        headers={"Cache-Control": "no-cache, no-store"},
    )


@router.get("/stream/{camera_id}/{segment}")
async def segment(ctx: Context, camera_id: str, segment: str, token: str | None = None) -> Response:
    claims = ctx.authorize(token)
    state = ctx.known_camera(camera_id)
    if claims.camera_id != camera_id:
        raise ApiError(403, "wrong_camera", "stream token was issued for another camera")
    if not SEGMENT_NAME.match(segment):
        raise ApiError(404, "not_found", "no such segment")
    path: Path = camera_dir(ctx.config, state.camera_id) / segment
    try:
        data = await asyncio.to_thread(path.read_bytes)
    except OSError:
        raise ApiError(404, "not_found", "segment is no longer available") from None
    return Response(data, media_type=SEGMENT_TYPE, headers={"Cache-Control": "private"})


@router.get("/snapshot")
async def snapshot(ctx: Context, token: str | None = None) -> Response:
    claims = ctx.authorize(token)
    state = ctx.known_camera(claims.camera_id)
    name = newest_segment(await ctx.read_playlist(state))
    assert name is not None
    try:
        jpeg = await ctx.snapshotter.get(
            state.camera_id, camera_dir(ctx.config, state.camera_id) / name
        )
    except SnapshotError as exc:
        raise ApiError(503, "not_ready", f"no frame available: {exc}") from None
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-cache"})


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(PlateBridgeError)
    async def _api_error(_: Request, exc: PlateBridgeError) -> JSONResponse:
        return _json_error(exc.status, exc.code, exc.message, exc.response_headers())

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        detail = exc.detail if isinstance(exc.detail, str) else code
        return _json_error(exc.status_code, code, detail, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        where = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors())
        return _json_error(400, "bad_request", f"invalid request parameters: {where}")

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error while serving a request: %s", type(exc).__name__)
        return _json_error(500, "internal", "internal error")


def create_app(
    config: PodConfig,
    cameras: Mapping[str, CameraState],
    *,
    started_at: float | None = None,
    snapshotter: Snapshotter | None = None,
    tunnel_status: Callable[[], dict[str, Any]] | None = None,
    recording: Recording | None = None,
) -> FastAPI:
    """Build the ASGI app. ``cameras`` is live state owned by the supervisors (read-only here)."""
    app = FastAPI(
        title="PlateBridge POD agent",
        version=config.firmware_version,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.pod = PodContext(
        config=config,
        cameras=cameras,
        secret=config.stream_token_secret.get_secret_value(),
        started=time.monotonic() if started_at is None else started_at,
        snapshotter=snapshotter or Snapshotter(config.ffmpeg_path),
        tunnel_status=tunnel_status,
    )
    app.state.recording = recording  # the recording index for the playback routes
    if config.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(config.cors_origins),
            allow_methods=["GET"],
            allow_headers=["Range"],
            expose_headers=list(PLAYBACK_HEADERS),
            max_age=600,
        )
    _install_error_handlers(app)
    app.include_router(router)
    app.include_router(live_router)
    app.include_router(playback_router)
    app.include_router(metrics_router)  # GET /metrics (off unless configured)
    return app
