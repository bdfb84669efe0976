"""The POD's end of the tunnel (Method 4): one outbound WebSocket to the portal.

The agent dials ``{portal_url}/api/pod/tunnel`` (``wss://`` when the portal URL is ``https://``)
with its pod key, and answers the requests the portal sends down that connection by calling
its *own* HTTP server on the listen address — GET of ``/stream``, segments, ``/snapshot``,
``/health``, the live fMP4 body and the four ``/recordings/{camera}`` playback paths only
(:func:`platebridge.core.tunnel.allowed_path`); anything else is answered 403
here, so the tunnel never reaches anything else on the POD's network. Many requests run at once,
each in its own task, each sending body chunks only within the credit the portal granted.

When the connection drops or cannot be made, the client retries with full-jitter back-off
(:func:`platebridge.pod.backoff.full_jitter`); a refused key waits longest. The wire protocol
is :mod:`platebridge.core.tunnel`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from platebridge.core import tunnel as proto
from platebridge.core.aio import within
from platebridge.core.http_client import new_async_client
from platebridge.core.redact import redact_text
from platebridge.pod.backoff import full_jitter
from platebridge.pod.config import PodConfig

log = logging.getLogger("platebridge.pod.tunnel")

State = Literal["connecting", "connected", "disconnected", "stopped"]
RETRY_BASE = 0.5
REFUSED_MIN_DELAY = 10.0
_FORBIDDEN_BODY = b'{"error":"tunnel_path_refused","detail":"the tunnel only serves the stream"}'


def tunnel_url(portal_url: str) -> str:
    """``http(s)://host/base`` → ``ws(s)://host/base/api/pod/tunnel``."""
    scheme, rest = portal_url.split("://", 1)
    return f"{'wss' if scheme == 'https' else 'ws'}://{rest.rstrip('/')}{proto.TUNNEL_PATH}"


def local_base(config: PodConfig) -> str:
    """Where the agent's own HTTP server answers (a wildcard listen address → loopback)."""
    host = config.listen_host
    if host == "0.0.0.0":
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    scheme = "https" if config.tls_cert else "http"
    return f"{scheme}://{host}:{config.listen_port}"


@dataclass
class _Stream:
    stream_id: int
    credit: int
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


class TunnelClient:
    """Keeps the tunnel up until :meth:`stop`; serves the portal's requests over it."""

    def __init__(self, config: PodConfig, *, base_url: str | None = None) -> None:
        self.config = config
        self.url = tunnel_url(config.portal_url)
        self.base_url = base_url or local_base(config)
        self.state: State = "disconnected"
        self.connects = 0
        self._streams: dict[int, _Stream] = {}
        self._stop = asyncio.Event()
        self._send_lock = asyncio.Lock()
        self._window = proto.DEFAULT_WINDOW
        self._max_streams = proto.DEFAULT_MAX_STREAMS

    @property
    def active_streams(self) -> int:
        return len(self._streams)

    def status(self) -> dict[str, Any]:
        """For ``/health``: no URL, no key."""
        return {"state": self.state, "streams": self.active_streams, "connects": self.connects}

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        cfg = self.config
        failures = 0
        # The local server is our own listen address: its certificate need not name it.
        verify: ssl.SSLContext | bool = False
        timeout = httpx.Timeout(connect=3.0, read=cfg.tunnel_read_timeout, write=5, pool=3)
        limits = httpx.Limits(max_connections=self._max_streams, keepalive_expiry=4.0)
        async with new_async_client(
            base_url=self.base_url,
            timeout=timeout,
            component="pod-tunnel",
            limits=limits,
            verify=verify,
        ) as local:
            while not self._stop.is_set():
                self.state = "connecting"
                refused = False
                try:
                    served = await self._connect_and_serve(local)
                    if served:
                        failures = 0
                except InvalidStatus as exc:
                    code = exc.response.status_code
                    refused = code in (401, 403)
                    log.log(
                        logging.ERROR if refused else logging.WARNING,
                        "tunnel: portal refused the connection (HTTP %d)%s",
                        code,
                        "; check api_key in the config" if refused else "",
                    )
                except (OSError, TimeoutError, InvalidHandshake, ConnectionClosed) as exc:
                    log.warning("tunnel: portal unreachable: %s", type(exc).__name__)
                except proto.TunnelProtocolError as exc:
                    log.warning("tunnel: protocol error: %s", redact_text(str(exc), cfg.secrets))
                finally:
                    self.state = "disconnected"
                if self._stop.is_set():
                    break
                delay = max(0.1, full_jitter(failures, RETRY_BASE, cfg.tunnel_backoff_max))
                if refused:
                    delay = max(delay, REFUSED_MIN_DELAY)
                failures += 1
                with contextlib.suppress(TimeoutError):
                    await within(self._stop.wait(), delay)
        self.state = "stopped"

    def _portal_tls(self) -> ssl.SSLContext | None:
        """The TLS context for ``wss://`` (the config's private CA, else the default); None
        for ``ws://``, where websockets refuses any context."""
        if not self.url.startswith("wss://"):
            return None
        verify = self.config.portal_verify()
        return verify if isinstance(verify, ssl.SSLContext) else ssl.create_default_context()

    async def _connect_and_serve(self, local: httpx.AsyncClient) -> bool:
        cfg = self.config
        headers = {"Authorization": f"Bearer {cfg.api_key.get_secret_value()}"}
        async with connect(
            self.url,
            additional_headers=headers,
            max_size=proto.MAX_MESSAGE,
            compression=None,  # video is compressed already: deflate would only cost CPU
            ping_interval=cfg.tunnel_ping_interval,
            ping_timeout=cfg.tunnel_ping_interval,
            open_timeout=cfg.heartbeat_timeout,
            close_timeout=2,
            user_agent_header=f"platebridge-pod/{cfg.firmware_version}",
            proxy=None,
            ssl=self._portal_tls(),
        ) as ws:
            hello = proto.decode(await within(ws.recv(), cfg.heartbeat_timeout))
            if hello.kind is not proto.FrameType.HELLO:
                raise proto.TunnelProtocolError("expected HELLO")
            limits = hello.control(proto.Hello)
            self._window = limits.window
            self._max_streams = limits.max_streams
            self.state = "connected"
            self.connects += 1
            log.info("tunnel: connected to the portal")
            try:
                await self._serve(ws, local)
            finally:
                await self._drop_streams()
            return True

    async def _serve(self, ws: ClientConnection, local: httpx.AsyncClient) -> None:
        stop = asyncio.ensure_future(self._stop.wait())
        try:
            while True:
                recv = asyncio.ensure_future(ws.recv())
                await asyncio.wait({recv, stop}, return_when=asyncio.FIRST_COMPLETED)
                if not recv.done():
                    recv.cancel()
                    with contextlib.suppress(BaseException):
                        await recv
                    await ws.close(1001, "pod shutting down")
                    return
                try:
                    message = recv.result()
                except ConnectionClosed as exc:
                    code = exc.rcvd.code if exc.rcvd else "-"
                    log.warning("tunnel: connection closed (%s)", code)
                    return
                await self._dispatch(ws, local, proto.decode(message))
        finally:
            stop.cancel()

    async def _dispatch(
        self, ws: ClientConnection, local: httpx.AsyncClient, frame: proto.Frame
    ) -> None:
        kind, sid = frame.kind, frame.stream_id
        if kind is proto.FrameType.REQUEST:
            head = frame.control(proto.RequestHead)
            if sid in self._streams:
                raise proto.TunnelProtocolError("stream id reused")
            if len(self._streams) >= self._max_streams:
                await self._send(ws, proto.encode_control(proto.FrameType.RESET, sid, _BUSY))
                return
            stream = _Stream(sid, self._window)
            self._streams[sid] = stream
            stream.task = asyncio.create_task(self._handle(ws, local, stream, head))
        elif kind is proto.FrameType.CREDIT:
            increment = frame.credit()
            found = self._streams.get(sid)
            if found is not None:
                found.credit += increment
                found.wake.set()
        elif kind is proto.FrameType.CANCEL:
            found = self._streams.get(sid)
            if found is not None and found.task is not None:
                found.task.cancel()
        else:
            raise proto.TunnelProtocolError(f"unexpected {kind.name} from the portal")

    async def _send(self, ws: ClientConnection, data: bytes) -> None:
        async with self._send_lock:
            await ws.send(data)

    async def _handle(
        self,
        ws: ClientConnection,
        local: httpx.AsyncClient,
        stream: _Stream,
        head: proto.RequestHead,
    ) -> None:
        sid = stream.stream_id
        try:
            if not (proto.allowed_path(head.path) and proto.allowed_query(head.query)):
                await self._refuse(ws, sid)
                return
            url = head.path + (f"?{head.query}" if head.query else "")
            try:
                async with local.stream("GET", url) as response:
                    status = proto.ResponseHead(
                        status=response.status_code,
                        headers=proto.response_headers(response.headers.items()),
                    )
                    frame = proto.encode_control(proto.FrameType.RESPONSE, sid, status)
                    await self._send(ws, frame)
                    # As the bytes arrive (a chunk size would hold a live stream back until
                    # that much has accumulated); _send_data splits to MAX_DATA frames.
                    async for chunk in response.aiter_raw():
                        await self._send_data(ws, stream, chunk)
            except httpx.ConnectError:
                await self._reset(ws, sid, "unreachable", "the POD's HTTP server is not answering")
                return
            except httpx.TimeoutException:
                await self._reset(ws, sid, "timeout", "the POD's HTTP server did not answer")
                return
            except httpx.HTTPError:
                await self._reset(ws, sid, "error", "the POD's HTTP server failed")
                return
            await self._send(ws, proto.encode(proto.FrameType.END, sid))
        except (ConnectionClosed, asyncio.CancelledError):
            pass  # tunnel gone, or the portal cancelled the stream: nothing more to send
        finally:
            self._streams.pop(sid, None)

    async def _send_data(self, ws: ClientConnection, stream: _Stream, chunk: bytes) -> None:
        view = memoryview(chunk)
        while view:
            while stream.credit <= 0:
                stream.wake.clear()
                await stream.wake.wait()
            size = min(len(view), stream.credit, proto.MAX_DATA)
            stream.credit -= size
            await self._send(
                ws, proto.encode(proto.FrameType.DATA, stream.stream_id, bytes(view[:size]))
            )
            view = view[size:]

    async def _refuse(self, ws: ClientConnection, sid: int) -> None:
        log.warning("tunnel: refused a request outside the stream endpoints")
        head = proto.ResponseHead(
            status=403,
            headers=[
                ("content-type", "application/json"),
                ("content-length", str(len(_FORBIDDEN_BODY))),
            ],
        )
        await self._send(ws, proto.encode_control(proto.FrameType.RESPONSE, sid, head))
        await self._send(ws, proto.encode(proto.FrameType.DATA, sid, _FORBIDDEN_BODY))
        await self._send(ws, proto.encode(proto.FrameType.END, sid))

    async def _reset(self, ws: ClientConnection, sid: int, error: str, detail: str) -> None:
        reset = proto.Reset(error=error, detail=detail)
        await self._send(ws, proto.encode_control(proto.FrameType.RESET, sid, reset))

    async def _drop_streams(self) -> None:
        tasks = [s.task for s in self._streams.values() if s.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._streams.clear()


_BUSY = proto.Reset(error="busy", detail="too many concurrent tunnel requests")
