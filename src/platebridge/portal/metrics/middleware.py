"""The ASGI middleware that measures every request and WebSocket of the portal.

Outermost but one (inside the security headers), so it sees each request's route template
(``scope["route"]``, set by the router on the same scope), its status and its body. The
streaming path tells it how it reached the POD (:func:`note_stream_method`, called by
``streaming.path.PodStream.fetch``) through a context variable: then the response's bytes
count as relayed video, a live WebSocket as a viewer, a playlist as an HLS player.
"""

from __future__ import annotations

import contextvars
import functools
import os
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from platebridge.core.heartbeat import HEARTBEAT_PATH
from platebridge.portal.metrics import instruments as m
from platebridge.portal.metrics.viewers import HLS_VIEWERS

#: The routes whose meaning the middleware knows (templates, as the router names them).
TUNNEL_ROUTE = "/api/pod/tunnel"
LIVE_ROUTE = "/api/pod/live/{pod_id}"
PLAYLIST_ROUTE = "/api/pod/proxy-stream/{pod_id}"
UNMATCHED = "unmatched"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_STREAM_METHODS = frozenset({"proxy", "tunnel"})


@dataclass
class _StreamUse:
    """What one request's streaming path told: the method it reached the POD by."""

    live: bool
    method: str | None = None
    counted: bool = False  # a live viewer was added to the gauge

    def set(self, method: str) -> None:
        if not self.counted:  # a counted viewer keeps its label until it leaves
            self.method = method if method in _STREAM_METHODS else "other"


_USE: contextvars.ContextVar[_StreamUse | None] = contextvars.ContextVar(
    "platebridge_stream_use", default=None
)


def note_stream_method(method: str) -> None:
    """Called by the streaming path once it reached the POD (``proxy`` or ``tunnel``)."""
    use = _USE.get()
    if use is not None:
        use.set(method)
        if use.live and not use.counted:
            use.counted = True
            m.ACTIVE_VIEWERS.labels(use.method, "live").inc()


def route_template(scope: Scope) -> str:
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else UNMATCHED


def heartbeat_outcome(status: int) -> str:
    if status < 300:
        return "ok"
    if status == 401:
        return "unauthorized"
    if status == 429:
        return "throttled"
    return "invalid" if status < 500 else "error"


@functools.lru_cache(maxsize=4096)
def _request_series(method: str, route: str, status: int) -> tuple[Any, Any, Any]:
    """The series a request counts in: (duration, count, heartbeat outcome or None). Cached:
    looking the labelled children up was three ``labels()`` calls per request (locks, tuple
    checks). Bounded: methods x route templates x status codes."""
    outcome = m.HEARTBEATS.labels(heartbeat_outcome(status)) if route == HEARTBEAT_PATH else None
    return (
        m.REQUEST_SECONDS.labels(method, route),
        m.REQUESTS.labels(method, route, f"{status // 100}xx"),
        outcome,
    )


class MetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._pools: set[int] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self.app(scope, receive, self._on_shutdown(send))
        else:
            await self.app(scope, receive, send)

    @staticmethod
    def _on_shutdown(send: Send) -> Send:
        """Multiprocess: once the app has shut down, this process's live gauges (viewers,
        tunnels, pool) leave the shared directory (``mark_process_dead``)."""

        async def sending(message: Message) -> None:
            if message["type"] == "lifespan.shutdown.complete" and m.multiprocess_dir():
                from prometheus_client import multiprocess

                multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
            await send(message)

        return sending

    def _watch_pool(self, scope: Scope) -> None:
        """The first request of an app attaches the pool gauges to its database engine."""
        app: Any = scope.get("app")
        db = getattr(getattr(app, "state", None), "db", None)
        engine = getattr(db, "engine", None)
        if engine is not None and id(engine) not in self._pools:
            from platebridge.portal.metrics.pool import watch_pool

            self._pools.add(id(engine))
            watch_pool(engine)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._watch_pool(scope)
        started = time.perf_counter()
        use = _StreamUse(live=False)
        status = 500

        async def measured(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body" and use.method is not None:
                size = len(message.get("body", b""))
                if size:
                    m.STREAM_BYTES.labels(use.method, "hls").inc(size)
            await send(message)

        reset = _USE.set(use)
        try:
            await self.app(scope, receive, measured)
        finally:
            _USE.reset(reset)
            route = route_template(scope)
            method = scope["method"] if scope["method"] in _METHODS else "other"
            seconds, count, outcome = _request_series(method, route, status)
            seconds.observe(time.perf_counter() - started)
            count.inc()
            if outcome is not None:
                outcome.inc()
            elif route == PLAYLIST_ROUTE and status == 200 and use.method is not None:
                HLS_VIEWERS.seen(_viewer_key(scope), use.method)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        use = _StreamUse(live=True)
        tunnel = False

        async def counted_receive() -> Message:
            message = await receive()
            if tunnel and message["type"] == "websocket.receive":
                size = len(message.get("bytes") or b"") + len(message.get("text") or "")
                m.TUNNEL_BYTES.labels("in").inc(size)
            return message

        async def counted_send(message: Message) -> None:
            nonlocal tunnel
            kind = message["type"]
            if kind == "websocket.accept" and route_template(scope) == TUNNEL_ROUTE:
                tunnel = True
                m.TUNNEL_CONNECTIONS.inc()
            elif kind == "websocket.send":
                size = len(message.get("bytes") or b"") + len(message.get("text") or "")
                if tunnel:
                    m.TUNNEL_BYTES.labels("out").inc(size)
                elif use.method is not None:
                    m.STREAM_BYTES.labels(use.method, "live").inc(size)
            await send(message)

        reset = _USE.set(use)
        try:
            await self.app(scope, counted_receive, counted_send)
        finally:
            _USE.reset(reset)
            if tunnel:
                m.TUNNEL_CONNECTIONS.dec()
            if use.counted and use.method is not None:
                m.ACTIVE_VIEWERS.labels(use.method, "live").dec()


def _viewer_key(scope: Scope) -> tuple[str, ...]:
    """One HLS player: its address, the camera it plays (in memory only, never a label)."""
    client = scope.get("client")
    params = scope.get("path_params") or {}
    query = dict(parse_qsl(bytes(scope.get("query_string", b"")).decode("latin-1")[:4096]))
    return (
        str(client[0]) if client else "",
        str(params.get("pod_id", ""))[:64],
        query.get("camera_id", "")[:64],
        query.get("stream", "")[:8],
    )
