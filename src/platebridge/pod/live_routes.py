"""The live routes of the agent: ``GET /live/{camera_id}`` (fMP4 body) and its WebSocket.

``GET /live/{camera_id}?token=T`` is what the portal relays (proxy, VPN, tunnel): init segment,
keyframe cache, then live fragments, as one endless ``video/mp4`` body; a camera restart ends
the body (the relay reconnects). ``/live/{camera_id}/ws?token=T`` is the viewer protocol of
docs/live.md for the direct method. Token checks and refusals are those of ``/stream``; the
WebSocket is refused *before* the upgrade (an HTTP error with the usual JSON body).

``?stream=sub`` asks for the camera's substream (``sub_rtsp_url``), which runs only while it
has viewers (:class:`platebridge.pod.substream.OnDemand`): each viewer holds it from before the
wait for its init segment until its body or socket ends. A camera without a substream serves
its main stream for ``stream=sub`` (a grid always plays); any other value is 422.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from collections.abc import AsyncIterator, Callable

from fastapi import APIRouter, WebSocket
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.websockets import WebSocketDisconnect

from platebridge.core.errors import PlateBridgeError, error_body
from platebridge.core.live import TOO_SLOW, Notice, Subscription
from platebridge.pod.context import ApiError, Context, PodContext
from platebridge.pod.live import CameraLive
from platebridge.pod.supervisor import CameraState

log = logging.getLogger("platebridge.pod.live")

#: How long a request waits for a starting camera's init segment before 409 camera_inactive.
INIT_WAIT = 5.0
#: A substream starts with its first viewer (probe, RTSP, the first keyframe): it gets longer.
SUB_INIT_WAIT = 10.0
STREAMS = ("main", "sub")
LIVE_TYPE = "video/mp4"
CLOSE_POLICY = 1008
CLOSE_ERROR = 1011

router = APIRouter()


def mime(codecs: str) -> str:
    return f'video/mp4; codecs="{codecs}"'


def _nothing() -> None:
    return None


def _once(*steps: Callable[[], None]) -> Callable[[], None]:
    """Run ``steps`` on the first call only."""
    done: list[bool] = []

    def run() -> None:
        if not done:
            done.append(True)
            for step in steps:
                step()

    return run


def check_stream(stream: str | None) -> str:
    if stream is None:
        return "main"
    if stream not in STREAMS:
        raise ApiError(422, "validation_error", "stream: must be 'main' or 'sub'")
    return stream


async def open_live(
    ctx: PodContext, camera_id: str, token: str | None, stream: str | None = None
) -> tuple[CameraLive, Callable[[], None]]:
    """Authorise like ``/stream`` and wait (≤ :data:`INIT_WAIT`) for the camera's live output;
    with ``stream=sub`` the substream, started for this viewer. Returns the live output and
    what to call when the viewer leaves (it releases the substream)."""
    which = check_stream(stream)
    claims = ctx.authorize(token)
    state = ctx.known_camera(camera_id)
    if claims.camera_id != camera_id:
        raise ApiError(403, "wrong_camera", "stream token was issued for another camera")
    demand, sub = state.sub_demand, state.sub
    if which == "main" or demand is None or sub is None:
        return await _wait_live(state, INIT_WAIT), _nothing
    await demand.acquire()
    try:
        return await _wait_live(sub, SUB_INIT_WAIT), demand.release
    except BaseException:
        demand.release()
        raise


async def _wait_live(state: CameraState, wait: float) -> CameraLive:
    live = state.live
    if live is None:
        raise ApiError(409, "camera_inactive", "live output is turned off on this POD")
    if live.fanout.ready:
        return live
    if state.status == "error":
        raise ApiError(503, "camera_error", state.error or "camera failed", {"Retry-After": "2"})
    if live.error is not None:
        raise ApiError(503, "live_unavailable", live.error)
    if not await live.fanout.wait_ready(wait):
        if live.error is not None:
            raise ApiError(503, "live_unavailable", live.error)
        raise ApiError(
            409,
            "camera_inactive",
            f"camera has no live video yet (status: {state.status})",
            {"Retry-After": "1"},
        )
    return live


def _end_reason(live: CameraLive, sub: Subscription) -> tuple[str, str]:
    reason = sub.close_reason or "closed"
    if reason == TOO_SLOW:
        return reason, "the viewer fell too far behind the live stream"
    if reason == "live_unavailable":
        return reason, live.error or "live view unavailable"
    if reason == "camera_error":
        return reason, "the camera's stream stopped; it is being restarted"
    return reason, "the live stream ended"


@router.get("/live/{camera_id}")
async def live_stream(
    ctx: Context, camera_id: str, token: str | None = None, stream: str | None = None
) -> StreamingResponse:
    live, release = await open_live(ctx, camera_id, token, stream)
    sub = live.fanout.subscribe()
    leave = _once(sub.close, release)

    async def body() -> AsyncIterator[bytes]:
        try:
            async for message in sub:
                if isinstance(message, bytes):
                    yield message
        finally:
            leave()

    iterator = body()
    # A body the server never started (the client left before it) never runs its finally:
    # leave when it is collected instead, so a substream is never held by a viewer gone.
    weakref.finalize(iterator, leave)

    headers = {"Cache-Control": "no-store", "X-Live-Codecs": live.codecs}
    return StreamingResponse(iterator, media_type=LIVE_TYPE, headers=headers)


async def _refuse(ws: WebSocket, exc: PlateBridgeError) -> None:
    """Refuse the upgrade with the usual JSON error (or, without the ASGI extension, 403)."""
    response = JSONResponse(
        error_body(exc.code, exc.message), exc.status, headers=exc.response_headers()
    )
    try:
        await ws.send_denial_response(response)
    except RuntimeError:
        await ws.close(CLOSE_POLICY)


def _notice(message: Notice) -> str:
    body: dict[str, str | int] = {"type": "notice", "reason": message.reason}
    if message.reason == "restarted":
        body |= {"codecs": message.codecs, "mime": mime(message.codecs)}
    else:
        body["skips"] = message.skips
    return json.dumps(body)


async def _send_all(ws: WebSocket, sub: Subscription) -> None:
    async for message in sub:
        if isinstance(message, bytes):
            await ws.send_bytes(message)
        else:
            await ws.send_text(_notice(message))


async def _until_closed(ws: WebSocket) -> None:
    """Read (and ignore) what the viewer sends, until it goes away."""
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return


@router.websocket("/live/{camera_id}/ws")
async def live_ws(
    ws: WebSocket, camera_id: str, token: str | None = None, stream: str | None = None
) -> None:
    ctx: PodContext = ws.app.state.pod
    try:
        live, release = await open_live(ctx, camera_id, token, stream)
    except PlateBridgeError as exc:
        await _refuse(ws, exc)
        return
    sub = live.fanout.subscribe()
    try:
        await ws.accept()
        codecs = live.codecs
        hello = {"type": "init", "codecs": codecs, "mime": mime(codecs), "camera_id": camera_id}
        await ws.send_text(json.dumps(hello))
        sender = asyncio.create_task(_send_all(ws, sub))
        watcher = asyncio.create_task(_until_closed(ws))
        done, pending = await asyncio.wait({sender, watcher}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if sender in done and sender.exception() is None:
            code, detail = _end_reason(live, sub)
            await ws.send_text(json.dumps({"type": "error", "error": code, "detail": detail}))
            await ws.close(CLOSE_POLICY if code == TOO_SLOW else CLOSE_ERROR)
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass  # the viewer went away mid-send
    finally:
        sub.close()
        release()
