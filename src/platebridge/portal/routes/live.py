"""``WS /api/pod/live/{pod_id}?camera_id=C&token=T[&stream=sub]``: the live fMP4 view
(docs/live.md). ``stream=sub`` plays the camera's substream (the POD serves its main stream for
a camera without one); it is passed to the POD on every method, and is part of the fan-out key.

Authorised like the HLS proxy routes (the one streaming path: session cookie or bearer, else
the stream token), all *before* the upgrade: a refusal is the usual JSON error body with its
status (the WebSocket denial response), so another company's camera is a 404 like everywhere.
After the upgrade the viewer gets the protocol of ``streaming/live.py``.

The route is a FastAPI WebSocket route installed without the app-wide user guard (which reads
an HTTP request); like the HLS routes it is ``@public`` and authorises itself.
"""

from __future__ import annotations

import contextlib
from urllib.parse import urlsplit

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIWebSocketRoute
from starlette.responses import JSONResponse
from starlette.websockets import WebSocket

from platebridge.core.errors import PlateBridgeError
from platebridge.portal.credentials import bearer_token
from platebridge.portal.deps import ClientIp, Db, SessionToken, Settings, Streaming, public
from platebridge.portal.errors import field_errors, validation_response
from platebridge.portal.metrics.middleware import note_stream_method
from platebridge.portal.streaming.audit_events import record_stream_started
from platebridge.portal.streaming.authorize import authorize_stream
from platebridge.portal.streaming.live import (
    CLOSE_UPSTREAM,
    LiveKey,
    LiveStream,
    error_message,
    serve_viewer,
    stream_query,
)
from platebridge.portal.streaming.path import PodStream, open_stream
from platebridge.portal.streaming.relay_errors import UpstreamBody, UpstreamError
from platebridge.portal.streaming.select import Method, Upstream

LIVE_PATH = "/api/pod/live/{pod_id}"
_MAX_ID = 64
_MAX_TOKEN = 2048


def _too_long(name: str, limit: int, where: str = "query") -> RequestValidationError:
    """As the HLS routes' parameter limits answer (422 ``validation_error``)."""
    return RequestValidationError(
        [{"loc": (where, name), "msg": f"at most {limit} characters", "type": "too_long"}]
    )


def _stream(value: str | None) -> LiveStream:
    """The ``stream`` query parameter (absent: main); anything else is 422, before the upgrade."""
    if value is None or value == "main":
        return "main"
    if value == "sub":
        return "sub"
    raise RequestValidationError(
        [{"loc": ("query", "stream"), "msg": "must be 'main' or 'sub'", "type": "literal_error"}]
    )


def _same_origin_login(websocket: WebSocket, login: str | None) -> str | None:
    """The login token, unless it is the cookie on a cross-site handshake.

    Browsers send cookies with a WebSocket handshake whatever page opened it and there is no
    CORS for WebSockets, so a cookie only counts when ``Origin`` is this site (a bearer header
    cannot be set by a page, and a stream token is explicit).
    """
    if login is None or bearer_token(websocket) is not None:
        return login
    origin = websocket.headers.get("origin")
    if origin is None:
        return login  # not a browser
    if urlsplit(origin).netloc.lower() == websocket.headers.get("host", "").lower():
        return login
    return None


async def _deny(websocket: WebSocket, response: JSONResponse) -> None:
    """Answer the upgrade with ``response`` instead of 101 (or refuse with 403 where the server
    lacks the denial-response extension)."""
    response.headers["Cache-Control"] = "no-store"
    try:
        await websocket.send_denial_response(response)
    except RuntimeError:
        await websocket.close(code=1008)


async def _authorised(
    db: Db,
    settings: Settings,
    state: Streaming,
    login: SessionToken,
    pod_id: str,
    camera_id: str | None,
    token: str | None,
) -> PodStream:
    if len(pod_id) > _MAX_ID:
        raise _too_long("pod_id", _MAX_ID, "path")
    if camera_id is not None and len(camera_id) > _MAX_ID:
        raise _too_long("camera_id", _MAX_ID)
    if token is not None and len(token) > _MAX_TOKEN:
        raise _too_long("token", _MAX_TOKEN)
    return await open_stream(
        authorize=lambda: authorize_stream(
            db, settings, state, pod_id, camera_id, login=login, token=token
        ),
        state=state,
        settings=settings,
    )


@public
async def live_endpoint(
    websocket: WebSocket,
    db: Db,
    settings: Settings,
    state: Streaming,
    login: SessionToken,
    ip: ClientIp,
    pod_id: str,
    camera_id: str | None = None,
    token: str | None = None,
    stream: str | None = None,
) -> None:
    login = _same_origin_login(websocket, login)
    try:
        which = _stream(stream)
        pod_stream = await _authorised(db, settings, state, login, pod_id, camera_id, token)
    except PlateBridgeError as exc:
        body = JSONResponse(exc.body(), status_code=exc.status, headers=exc.response_headers())
        await _deny(websocket, body)
        return
    except RequestValidationError as exc:
        await _deny(websocket, validation_response(field_errors(exc.errors(), ("query", "path"))))
        return
    await websocket.accept()
    access = pod_stream.access
    extra = stream_query(which)

    async def open_live(up: Upstream, query: str) -> UpstreamBody:
        return await up.relay.open_live(f"{up.base}/live/{pod_stream.camera_path}{query}{extra}")

    async def opener() -> tuple[UpstreamBody, Method]:
        body, up = await pod_stream.fetch(open_live)
        return body, up.method

    key: LiveKey = (access.pod.id, access.camera.camera_id, which)
    try:
        viewer = await state.live.join(key, opener)
    except UpstreamError as exc:
        with contextlib.suppress(Exception):  # the viewer may be gone already
            await websocket.send_text(error_message(exc.code, exc.message))
            await websocket.close(CLOSE_UPSTREAM)
        return
    note_stream_method(viewer.upstream.method)  # metrics: this viewer (a shared upstream)
    await record_stream_started(db, access, state, ip, viewer.upstream.method)

    async def still_allowed() -> PodStream:
        return await _authorised(db, settings, state, login, pod_id, camera_id, token)

    await serve_viewer(viewer, websocket, access.camera.camera_id, still_allowed)


def install_live(app: FastAPI) -> None:
    """Add the live WebSocket route, outside the app-wide user guard (it authorises itself)."""
    app.router.routes.append(APIWebSocketRoute(LIVE_PATH, live_endpoint, name="live"))
