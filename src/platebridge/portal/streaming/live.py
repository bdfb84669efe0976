"""Live fMP4 relay: one upstream per (pod, camera) per portal process, fanned out to viewers.

The first viewer of a camera opens the POD's endless ``GET /live/{camera}`` body (through the
one streaming path, so proxy, VPN or tunnel and the ``auto`` fallback are chosen as for HLS);
its bytes are cut into an init segment and fragments (:class:`platebridge.core.fmp4.Splitter`)
and pushed into one :class:`platebridge.core.live.LiveFanout`. Later viewers subscribe to it
and start with the keyframe cache. The upstream is closed :data:`LINGER_SECONDS` after its last
viewer left, so a page reload reuses it. A failure of the upstream ends every subscription; the
viewers are told its error code and reconnect (a new upstream is opened then).

Nothing here buffers without bound: the fan-out budgets each subscriber, and a viewer's socket
send that does not complete within :data:`SEND_TIMEOUT` drops that viewer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol
from urllib.parse import quote

import httpx

from platebridge.core.aio import within
from platebridge.core.errors import PlateBridgeError
from platebridge.core.fmp4 import Fmp4Error, Fragment, InitSegment, Splitter, codecs_from_init
from platebridge.core.live import (
    DEFAULT_BUDGET,
    TOO_SLOW,
    LiveFanout,
    Message,
    Notice,
    Subscription,
)
from platebridge.portal.streaming.relay import UpstreamBody, UpstreamError, read_error
from platebridge.portal.streaming.select import Method

logger = logging.getLogger(__name__)

#: Seconds an upstream stays open after its last viewer left (a reload or a grid page switch).
LINGER_SECONDS = 5.0
#: Seconds the first viewer waits for the init segment once the POD answered.
INIT_TIMEOUT = 10.0
#: Seconds one WebSocket send may take; a viewer slower than that is dropped.
SEND_TIMEOUT = 10.0
#: Fragments queued for a viewer are joined into binary messages of up to this size (the
#: viewer protocol's binary messages are byte ranges of the stream, not one fragment each);
#: 1 MiB is the default ``max_size`` of common WebSocket clients (Python ``websockets``).
BATCH_BYTES = 1024 * 1024
#: A camera restart (the POD ends its body) is bridged for this long, trying again every
#: RESUME_PAUSE seconds, while the POD says the camera is coming back.
RESUME_SECONDS = 10.0
RESUME_PAUSE = 0.25  # the POD restarts ffmpeg as soon as the camera answers (camera_probe)
RESUMABLE = frozenset({"upstream_ended", "camera_inactive", "camera_error", "stream_not_ready"})
#: Seconds between two authorisations of an open viewing.
RECHECK_SECONDS = 30.0
#: WebSocket close codes: the upstream failed (1011), the viewer broke a rule / was too slow.
CLOSE_UPSTREAM = 1011
CLOSE_POLICY = 1008

#: Which of a camera's streams: the main one, or its substream (the grid's smaller picture).
LiveStream = Literal["main", "sub"]
LIVE_STREAMS: tuple[LiveStream, ...] = ("main", "sub")
#: (pod row id, camera id, stream): pod ids are per company, the row id is unique; a camera's
#: main and substream are two upstreams (two RTSP sessions on the POD).
LiveKey = tuple[uuid.UUID, str, LiveStream]
#: Opens the POD's live body; returns it with the method used (proxy / VPN / tunnel).
Opener = Callable[[], Awaitable[tuple[UpstreamBody, Method]]]
#: Authorises the viewer again; raises :class:`PlateBridgeError` when it may no longer watch.
Recheck = Callable[[], Awaitable[object]]


def live_path(pod_id: str, camera_id: str, token: str | None, stream: LiveStream = "main") -> str:
    """The portal's live WebSocket path for a camera (same origin), with the viewer token
    when there is one (without: the session cookie authorises it); ``stream=sub`` for the
    substream (main: no parameter, as before)."""
    query = f"camera_id={quote(camera_id, safe='')}"
    if token is not None:
        query += f"&token={quote(token, safe='')}"
    return f"/api/pod/live/{quote(pod_id, safe='')}?{query}{stream_query(stream)}"


def stream_query(stream: LiveStream) -> str:
    """What a live URL (the portal's or the POD's) carries for ``stream``: ``&stream=sub``, or
    nothing for the main stream (so an older POD, which ignores the parameter, serves main)."""
    return "&stream=sub" if stream == "sub" else ""


def mime_for(codecs: str) -> str:
    """The type a player asks ``MediaSource.isTypeSupported``."""
    return f'video/mp4; codecs="{codecs}"'


class LiveUpstream:
    """One POD live body and its fan-out; shared by every viewer of the camera."""

    def __init__(self, key: LiveKey, owner: LiveRelays) -> None:
        self.key = key
        self.fanout = LiveFanout(budget=owner.budget)
        self.method: Method = "proxy"
        self.codecs = ""
        self.viewers = 0
        self.error: UpstreamError | None = None
        self.bytes_in = 0
        self._got_video = False  # this POD body delivered fragments
        self._owner = owner
        self._ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._task: asyncio.Task[None] | None = None
        self._linger: asyncio.TimerHandle | None = None

    @property
    def done(self) -> bool:
        return self._task is not None and self._task.done()

    def start(self, opener: Opener) -> None:
        self._task = asyncio.create_task(self._run(opener), name=f"live-upstream {self.key[1]}")

    async def ready(self) -> None:
        """Until the first init segment is in (or the upstream failed: its UpstreamError)."""
        try:
            await within(asyncio.shield(self._ready), INIT_TIMEOUT)
        except TimeoutError:
            raise UpstreamError(
                504, "upstream_timeout", "the POD sent no live video in time"
            ) from None

    async def _run(self, opener: Opener) -> None:
        try:
            resume_until: float | None = None
            while True:
                self._got_video = False
                error = await self._once(opener)
                loop = asyncio.get_running_loop()
                if resume_until is None or self._got_video:
                    resume_until = loop.time() + RESUME_SECONDS  # a new restart, a new window
                if not (self._resumable(error) and loop.time() < resume_until):
                    self._fail(error)
                    return
                await asyncio.sleep(RESUME_PAUSE)
        except asyncio.CancelledError:
            self._fail(UpstreamError(503, "live_closed", "the live stream was closed"))
            raise
        finally:
            self._owner.discard(self)

    async def _once(self, opener: Opener) -> UpstreamError:
        """One POD body, pumped to its end; the error it ended with."""
        try:
            body, self.method = await opener()
            try:
                await self._pump(body)
            finally:
                await body.aclose()
            return UpstreamError(502, "upstream_ended", "the POD ended the live stream")
        except UpstreamError as exc:
            return exc
        except (httpx.HTTPError, TimeoutError, OSError) as exc:
            return read_error(exc)
        except Fmp4Error as exc:
            logger.warning("POD live stream of %s is not valid fMP4: %s", self.key[1], exc)
            return UpstreamError(502, "upstream_bad_live", "the POD's live video is invalid")

    def _resumable(self, error: UpstreamError) -> bool:
        """The camera restarted under watching viewers: open the POD's body again (its new init
        segment reaches them as a ``restarted`` notice) instead of ending their streams."""
        return self._ready.done() and self.viewers > 0 and error.code in RESUMABLE

    async def _pump(self, body: UpstreamBody) -> None:
        splitter = Splitter()
        async for chunk in body.aiter_bytes():
            self.bytes_in += len(chunk)
            for item in splitter.feed(chunk):
                if isinstance(item, InitSegment):
                    self.codecs = codecs_from_init(item.data)
                    self.fanout.set_init(item.data, self.codecs)
                    if not self._ready.done():
                        self._ready.set_result(None)
                elif isinstance(item, Fragment):
                    self._got_video = True
                    self.fanout.push(item)

    def _fail(self, exc: UpstreamError) -> None:
        if self.error is None:
            self.error = exc
        if not self._ready.done():
            self._ready.set_exception(exc)
            self._ready.exception()  # retrieved: no "never retrieved" warning
        self.fanout.close(exc.code)

    def joined(self) -> None:
        self.viewers += 1
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None

    def left(self) -> None:
        self.viewers -= 1
        if self.viewers <= 0 and self._linger is None and not self.done:
            loop = asyncio.get_running_loop()
            self._linger = loop.call_later(self._owner.linger, self._expire)

    def _expire(self) -> None:
        self._linger = None
        if self.viewers <= 0 and self._task is not None:
            self._task.cancel()

    async def aclose(self) -> None:
        if self._linger is not None:
            self._linger.cancel()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


@dataclass
class LiveRelays:
    """The live upstreams of one portal process (one per camera being watched)."""

    linger: float = LINGER_SECONDS
    budget: int = DEFAULT_BUDGET  # bytes queued per viewer before it skips to a keyframe
    upstreams: dict[LiveKey, LiveUpstream] = field(default_factory=dict)
    opened: int = 0  # upstreams opened since start (tests and stats)

    def discard(self, up: LiveUpstream) -> None:
        if self.upstreams.get(up.key) is up:
            del self.upstreams[up.key]

    async def join(self, key: LiveKey, opener: Opener) -> LiveViewer:
        """Subscribe to the camera's upstream, opening it (with ``opener``) if there is none.

        Raises :class:`UpstreamError` when the upstream cannot give an init segment.
        """
        up = self.upstreams.get(key)
        if up is None or up.done or up.error is not None:
            up = LiveUpstream(key, self)
            self.upstreams[key] = up
            self.opened += 1
            up.start(opener)
        up.joined()
        try:
            await up.ready()
            return LiveViewer(up, up.fanout.subscribe())
        except BaseException:
            up.left()
            raise

    def stats(self) -> dict[str, int]:
        """Open upstreams, their viewers, upstreams opened so far, bytes received from PODs by
        the open ones (with N viewers of a camera: one upstream, its bytes once)."""
        ups = list(self.upstreams.values())
        return {
            "upstreams": len(ups),
            "viewers": sum(u.viewers for u in ups),
            "opened": self.opened,
            "bytes_in": sum(u.bytes_in for u in ups),
        }

    async def aclose(self) -> None:
        for up in list(self.upstreams.values()):
            await up.aclose()


class LiveSocket(Protocol):
    """What a viewer's connection needs (a Starlette ``WebSocket`` is one)."""

    async def send_text(self, data: str) -> None: ...

    async def send_bytes(self, data: bytes) -> None: ...

    async def receive(self) -> Any: ...

    async def close(self, code: int = 1000, reason: str | None = None) -> None: ...


@dataclass
class LiveViewer:
    """One viewer's subscription to a shared upstream."""

    upstream: LiveUpstream
    subscription: Subscription
    left: bool = False

    def leave(self) -> None:
        """Unsubscribe (once; later calls do nothing)."""
        if self.left:
            return
        self.left = True
        self.subscription.close()
        self.upstream.left()

    def init_message(self, camera_id: str) -> str:
        codecs = self.upstream.codecs
        return json.dumps(
            {"type": "init", "codecs": codecs, "mime": mime_for(codecs), "camera_id": camera_id}
        )


def error_message(code: str, detail: str) -> str:
    return json.dumps({"type": "error", "error": code, "detail": detail})


def notice_message(notice: Notice) -> str:
    """``skipped`` (with the viewer's skip count) or ``restarted`` (a new init follows)."""
    body: dict[str, Any] = {"type": "notice", "reason": notice.reason}
    if notice.reason == "restarted":
        body.update(codecs=notice.codecs, mime=mime_for(notice.codecs))
    else:
        body["skips"] = notice.skips
    return json.dumps(body)


async def _send(socket: LiveSocket, message: Message | str) -> None:
    if isinstance(message, bytes):
        send = socket.send_bytes(message)
    else:
        send = socket.send_text(message if isinstance(message, str) else notice_message(message))
    await within(send, SEND_TIMEOUT)


_TOO_SLOW = (TOO_SLOW, "the viewer did not keep up with the live stream", CLOSE_POLICY)


async def _pump(viewer: LiveViewer, socket: LiveSocket) -> tuple[str, str, int]:
    """Send the subscription's messages; the (code, detail, close code) it ended with."""
    subscription = viewer.subscription
    while True:
        try:
            # What is queued goes in few large messages (the keyframe cache on joining).
            message = await subscription.next_batch(BATCH_BYTES)
        except StopAsyncIteration:
            break
        try:
            await _send(socket, message)
        except TimeoutError:
            return _TOO_SLOW
    if viewer.subscription.close_reason == TOO_SLOW:
        return _TOO_SLOW
    error = viewer.upstream.error
    if error is not None:
        return error.code, error.message, CLOSE_UPSTREAM
    return "live_closed", "the live stream was closed", CLOSE_UPSTREAM


async def _until_gone(socket: LiveSocket) -> None:
    """Read (and ignore) what the viewer sends until it disconnects."""
    while True:
        message = await socket.receive()
        if message.get("type") == "websocket.disconnect":
            return


async def _recheck(still_allowed: Recheck) -> tuple[str, str, int]:
    """Authorise again every :data:`RECHECK_SECONDS` (as every HLS request is): an expired
    token, a signed-out session or a pod gone offline ends the viewing."""
    while True:
        await asyncio.sleep(RECHECK_SECONDS)
        try:
            await still_allowed()
        except PlateBridgeError as exc:
            return exc.code, exc.message, CLOSE_POLICY


async def serve_viewer(
    viewer: LiveViewer, socket: LiveSocket, camera_id: str, still_allowed: Recheck
) -> None:
    """The viewer protocol after the upgrade (docs/live.md): init text, then the subscription's
    init segment and fragments and notices; an error message and close when the stream ends."""
    try:
        await _send(socket, viewer.init_message(camera_id))
        ending = [
            asyncio.create_task(_pump(viewer, socket)),
            asyncio.create_task(_recheck(still_allowed)),
        ]
        gone = asyncio.create_task(_until_gone(socket))
        tasks = [*ending, gone]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        viewer.leave()  # at once: a viewer whose socket is stuck holds nothing while we close
        ended = [t for t in ending if t.done() and not t.cancelled() and t.exception() is None]
        if (gone.done() and not gone.cancelled()) or not ended:
            return  # the viewer left, or the connection broke while sending
        code, detail, close_code = ended[0].result()
        with contextlib.suppress(Exception):
            await _send(socket, error_message(code, detail))
            await within(socket.close(close_code), SEND_TIMEOUT)
    except (TimeoutError, OSError, RuntimeError):
        return  # the socket is gone
    finally:
        viewer.leave()
