"""Relay a POD's HLS playlist and segments to the browser (Method 2 — portal proxy).

One :class:`PodRelay` per portal process owns one pooled :class:`httpx.AsyncClient` (created in
the app lifespan by :func:`platebridge.core.http_client.new_async_client`, closed with
:meth:`PodRelay.aclose`): keep-alive connections to the PODs are reused across segments and
viewers; redirects are never followed and proxy settings from the environment are ignored.

Every failure becomes an :class:`UpstreamError` carrying the status the viewer gets (JSON via
:func:`error_response`): POD unreachable → 502, POD too slow → 504, POD says 404 → 404, POD not
ready → 503, anything else unexpected → 502. The upstream URL carries the POD token
(``?token=…``), so it never appears in an error, and only redacted in logs.

Segments are streamed chunk by chunk, never held whole. The upstream status and content type
are checked *before* the response starts; once it has started, an upstream failure can only cut
the response short (the connection to the viewer is closed, so the player sees a truncated
segment, not a complete-looking one). A viewer who disconnects cancels the relay at once and the
upstream connection is closed — not returned to the pool half-read.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Mapping
from types import TracebackType
from typing import Any, Protocol, TypeVar

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse

from platebridge.core.errors import PlateBridgeError
from platebridge.core.http_client import new_async_client, user_agent
from platebridge.core.redact import redact_text
from platebridge.portal.body_stream import BodyStream
from platebridge.portal.streaming.hls_rewrite import MAX_PLAYLIST_BYTES
from platebridge.portal.streaming.ssrf import AddressRefused, IPNetwork, check_pod_address
from platebridge.portal.streaming.upstream_http import READ_SIZE, UpstreamPool

logger = logging.getLogger(__name__)
T = TypeVar("T")

PLAYLIST_CONTENT_TYPES = frozenset(
    {
        "application/vnd.apple.mpegurl",
        "application/x-mpegurl",
        "audio/mpegurl",
        "audio/x-mpegurl",
    }
)
SEGMENT_CONTENT_TYPES = frozenset(
    {"video/mp2t", "video/mp4", "video/iso.segment", "audio/aac", "application/octet-stream"}
)
PLAYLIST_MEDIA_TYPE = "application/vnd.apple.mpegurl"
CHUNK_SIZE = 64 * 1024
#: Plain-HTTP PODs (the lean client): hand on whatever the socket delivered, up to this much.
LEAN_CHUNK_SIZE = READ_SIZE
DEFAULT_KEEPALIVE_EXPIRY = 4.0
_MAX_RETRY_AFTER = 3600
#: ``User-Agent: platebridge-portal-relay/<version>`` (httpx client and lean client alike).
RELAY_COMPONENT = "portal-relay"


class UpstreamError(PlateBridgeError):
    """Fetching from the POD failed; ``status`` is what the viewer gets.

    ``code`` is a short machine-readable code, ``message`` a sentence for humans. Neither ever
    contains the upstream URL. (``status_code``/``error``/``detail`` are the relay's names.)
    """

    def __init__(
        self, status_code: int, error: str, detail: str, *, retry_after: int | None = None
    ) -> None:
        super().__init__(status_code, error, detail, retry_after=retry_after)

    @property
    def status_code(self) -> int:
        return self.status

    @property
    def error(self) -> str:
        return self.code

    @property
    def detail(self) -> str:
        return self.message


def error_response(exc: UpstreamError) -> JSONResponse:
    """The error body with the error's status (and ``Retry-After`` if known), never cached."""
    headers = {"Cache-Control": "no-store", **(exc.response_headers() or {})}
    return JSONResponse(exc.body(), status_code=exc.status, headers=headers)


async def upstream_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """For ``app.add_exception_handler(UpstreamError, upstream_error_handler)``."""
    if not isinstance(exc, UpstreamError):  # pragma: no cover - registered for UpstreamError
        raise exc
    return error_response(exc)


class _RedactHttpxLog(logging.Filter):
    """httpx logs every request URL at INFO: mask the ``?token=…`` in it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken record is not ours to fix
            return True
        record.msg = redact_text(message)
        record.args = None
        return True


def _install_httpx_log_redaction() -> None:
    for name in ("httpx", "httpcore"):
        target = logging.getLogger(name)
        if not any(isinstance(f, _RedactHttpxLog) for f in target.filters):
            target.addFilter(_RedactHttpxLog())


class _LogUrl:
    """``redact_text(url)``, computed only when a log record is actually written."""

    __slots__ = ("_url",)

    def __init__(self, url: str) -> None:
        self._url = url

    def __str__(self) -> str:
        return redact_text(self._url)


class _Response(Protocol):
    """What the relay uses of an upstream response: httpx's, or the lean client's."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    def aiter_bytes(self, chunk_size: int | None = None) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


#: An upstream response whose body is read by the caller (:meth:`PodRelay.open_live`).
UpstreamBody = _Response


def read_error(exc: BaseException) -> UpstreamError:
    """The viewer-facing error for a failure while reading an upstream body."""
    return _transport_error(exc)


def _media_type(response: _Response) -> str:
    value: str = response.headers.get("content-type", "")
    return value.split(";", 1)[0].strip().lower()


def _retry_after(response: _Response) -> int | None:
    value = response.headers.get("retry-after", "").strip()
    if value.isascii() and value.isdigit():
        return min(int(value), _MAX_RETRY_AFTER)
    return None


def _status_error(response: _Response) -> UpstreamError:
    code = response.status_code
    if 300 <= code < 400:
        return UpstreamError(
            502, "upstream_redirect", "the POD answered with a redirect, which is never followed"
        )
    if code in (401, 403):
        return UpstreamError(
            502,
            "upstream_refused_token",
            "the POD refused the portal's stream token (check the pod's stream secret and clock)",
        )
    if code == 404:
        return UpstreamError(404, "not_found", "the POD does not know this camera or segment")
    if code in (429, 503):
        return UpstreamError(
            503,
            "stream_not_ready",
            "the POD's stream is not ready yet, try again shortly",
            retry_after=_retry_after(response) or 2,
        )
    return UpstreamError(502, "upstream_error", f"the POD answered HTTP {code}")


#: The POD's own refusals about a camera's state, passed to the viewer with its sentence.
POD_CAMERA_ERRORS = frozenset({"camera_inactive", "camera_error", "live_unavailable"})
_MAX_REFUSAL_BYTES = 4096


async def _pod_refusal(response: _Response) -> UpstreamError | None:
    """A 409/503 JSON refusal of the POD naming the camera's state (why the camera has no
    video: the player can say so), else None; the body is read bounded."""
    if response.status_code not in (409, 503) or _media_type(response) != "application/json":
        return None
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > _MAX_REFUSAL_BYTES:
            return None
    try:
        data = json.loads(body)
        code, detail = data["error"], data["detail"]
    except (ValueError, KeyError, TypeError):
        return None
    if code not in POD_CAMERA_ERRORS or not isinstance(detail, str):
        return None
    return UpstreamError(
        response.status_code,
        code,
        redact_text(detail)[:300],
        retry_after=_retry_after(response),
    )


def _transport_error(exc: BaseException) -> UpstreamError:
    """Map an httpx/asyncio failure to an :class:`UpstreamError` (no URL, no exception text)."""
    if isinstance(exc, httpx.PoolTimeout):
        return UpstreamError(
            503, "relay_busy", "too many streams are being relayed, try again shortly"
        )
    if isinstance(exc, httpx.ConnectTimeout):
        return UpstreamError(504, "upstream_timeout", "connecting to the POD timed out")
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return UpstreamError(504, "upstream_timeout", "the POD did not answer in time")
    if isinstance(exc, httpx.ConnectError):
        return UpstreamError(502, "upstream_unreachable", "the POD cannot be reached")
    if isinstance(exc, httpx.ProtocolError):
        return UpstreamError(502, "upstream_bad_response", "the POD answered with invalid HTTP")
    return UpstreamError(502, "upstream_error", "the connection to the POD failed")


async def _close_response(response: _Response) -> None:
    await response.aclose()


async def _discard(
    task: asyncio.Future[T], leftover: Callable[[T], Awaitable[None]] | None
) -> None:
    task.cancel()
    await asyncio.wait({task})
    if task.cancelled() or task.exception() is not None:
        return
    if leftover is not None:
        await leftover(task.result())


async def _within(
    seconds: float,
    work: Coroutine[Any, Any, T],
    *,
    leftover: Callable[[T], Awaitable[None]] | None = None,
) -> T:
    """``await work``, or raise :class:`TimeoutError` after ``seconds``.

    ``work`` runs in its own task, so (unlike ``asyncio.timeout`` on Python 3.11) a deadline
    expiring just as it finishes can never leave a stray cancellation behind; a result that
    arrives too late is handed to ``leftover`` (to close an upstream response).
    """
    task = asyncio.ensure_future(work)
    try:
        await asyncio.wait({task}, timeout=seconds)
    except asyncio.CancelledError:
        await _discard(task, leftover)
        raise
    if task.done():
        return task.result()
    await _discard(task, leftover)
    raise TimeoutError


def relay_client(
    connect_timeout: float,
    read_timeout: float,
    *,
    limits: httpx.Limits | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """The relay's httpx client: the relay's deadlines, ``Accept-Encoding: identity`` (bodies
    are relayed as the POD sent them), and the settings of :func:`new_async_client`."""
    return new_async_client(
        timeout=httpx.Timeout(
            connect=connect_timeout, read=read_timeout, write=read_timeout, pool=connect_timeout
        ),
        component=RELAY_COMPONENT,
        limits=limits,
        transport=transport,
        headers={"Accept-Encoding": "identity"},
    )


class PodRelay:
    """Fetch playlists and stream segments from PODs over one pooled HTTP client."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        connect_timeout: float,
        read_timeout: float,
        playlist_timeout: float | None = None,
        head_timeout: float | None = None,
        chunk_size: int = CHUNK_SIZE,
        max_playlist_bytes: int = MAX_PLAYLIST_BYTES,
        allowed_networks: Iterable[IPNetwork] | None = None,
        pool: UpstreamPool | None = None,
    ) -> None:
        self._client = client
        #: The lean client for ``http://`` URLs (:mod:`platebridge.portal.streaming.upstream_http`);
        #: without one (the tunnel's relay) everything goes through ``client``.
        self._pool = pool
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        #: Whole playlist fetch (head and body): a trickling POD cannot hold a viewer forever.
        self.playlist_timeout = playlist_timeout or connect_timeout + 2 * read_timeout
        #: Until a segment's status line and headers are in.
        self.head_timeout = head_timeout or connect_timeout + read_timeout
        self.chunk_size = chunk_size
        self.max_playlist_bytes = max_playlist_bytes
        self.allowed_networks = tuple(allowed_networks) if allowed_networks is not None else None

    @classmethod
    def create(
        cls,
        connect_timeout: float,
        read_timeout: float,
        max_connections: int = 200,
        *,
        max_keepalive_connections: int | None = None,
        keepalive_expiry: float = DEFAULT_KEEPALIVE_EXPIRY,
        allowed_networks: Iterable[IPNetwork] | None = None,
        **options: Any,
    ) -> PodRelay:
        """Build the relay and its client. Call from the app lifespan, not at import time.

        ``allowed_networks`` (optional) re-checks every URL's host with the SSRF guard right
        before connecting — defence in depth for callers that built the URL with
        :func:`platebridge.portal.streaming.ssrf.pod_base_url`. ``options`` go to :class:`PodRelay`.
        """
        if connect_timeout <= 0 or read_timeout <= 0:
            raise ValueError("timeouts must be positive")
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        _install_httpx_log_redaction()
        client = relay_client(
            connect_timeout,
            read_timeout,
            limits=httpx.Limits(
                max_connections=max_connections,
                max_keepalive_connections=(
                    max_connections
                    if max_keepalive_connections is None
                    else max_keepalive_connections
                ),
                keepalive_expiry=keepalive_expiry,
            ),
        )
        pool = UpstreamPool(
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_connections=max_connections,
            keepalive_expiry=keepalive_expiry,
            user_agent=user_agent(RELAY_COMPONENT),
        )
        options.setdefault("chunk_size", LEAN_CHUNK_SIZE)
        return cls(
            client,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            allowed_networks=allowed_networks,
            pool=pool,
            **options,
        )

    @property
    def client(self) -> httpx.AsyncClient:
        return self._client

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()
        await self._client.aclose()

    async def __aenter__(self) -> PodRelay:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _request(self, url: str) -> httpx.URL:
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError, ValueError):
            raise UpstreamError(502, "bad_pod_url", "the POD URL is invalid") from None
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise UpstreamError(502, "bad_pod_url", "the POD URL is invalid")
        if self.allowed_networks is not None:
            try:
                check_pod_address(parsed.host, self.allowed_networks)
            except AddressRefused as exc:
                raise UpstreamError(502, "pod_address_refused", exc.message) from None
        return parsed

    async def _send(self, url: httpx.URL) -> _Response:
        if self._pool is not None and url.scheme == "http":
            host = url.raw_host.decode("ascii")
            return await self._pool.get(host, url.port or 80, url.raw_path)
        return await self._client.send(self._client.build_request("GET", url), stream=True)

    async def _open(
        self, request: httpx.URL, log_url: _LogUrl, *, explained: bool = False
    ) -> _Response:
        """Send a GET of ``request``; return the 200 response with its body not yet read.

        ``explained``: a POD refusal naming the camera's state passes on (:func:`_pod_refusal`).
        """
        try:
            response = await self._send(request)
        except (httpx.HTTPError, TimeoutError) as exc:
            logger.debug("POD request failed with %s: %s", type(exc).__name__, log_url)
            raise _transport_error(exc) from None
        if response.status_code != 200:
            try:
                refusal = await _pod_refusal(response) if explained else None
            except (httpx.HTTPError, TimeoutError):
                refusal = None
            finally:
                await response.aclose()
            logger.debug("POD answered HTTP %s: %s", response.status_code, log_url)
            raise refusal or _status_error(response)
        return response

    async def fetch_playlist(self, url: str) -> str:
        """The playlist text at ``url`` (checked: type, size, UTF-8, ``#EXTM3U``).

        Raises :class:`UpstreamError` on any failure.
        """
        log_url = _LogUrl(url)
        try:
            return await self._fetch_playlist(url, log_url)
        except UpstreamError as exc:
            logger.warning(
                "POD playlist relay failed: %s (%s) for %s", exc.error, exc.status_code, log_url
            )
            raise

    async def _fetch_playlist(self, url: str, log_url: _LogUrl) -> str:
        request = self._request(url)
        try:
            body = await _within(self.playlist_timeout, self._playlist_body(request, log_url))
        except TimeoutError:
            raise _transport_error(TimeoutError()) from None
        except httpx.HTTPError as exc:
            logger.debug("POD playlist read failed with %s: %s", type(exc).__name__, log_url)
            raise _transport_error(exc) from None
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise UpstreamError(
                502, "upstream_bad_playlist", "the POD's playlist is not UTF-8 text"
            ) from None
        if not text.startswith("#EXTM3U"):
            raise UpstreamError(
                502, "upstream_bad_playlist", "the POD did not send an HLS playlist"
            )
        return text

    async def _playlist_body(self, request: httpx.URL, log_url: _LogUrl) -> bytes:
        response = await self._open(request, log_url)
        try:
            return await self._read_playlist(response)
        finally:
            await response.aclose()

    async def _read_playlist(self, response: _Response) -> bytes:
        if _media_type(response) not in PLAYLIST_CONTENT_TYPES:
            raise UpstreamError(
                502, "upstream_bad_playlist", "the POD answered with something else than a playlist"
            )
        too_large = UpstreamError(
            502, "upstream_playlist_too_large", "the POD's playlist is too large"
        )
        declared = response.headers.get("content-length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > self.max_playlist_bytes:
            raise too_large
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > self.max_playlist_bytes:
                raise too_large
        return bytes(body)

    async def open_live(self, url: str) -> UpstreamBody:
        """Open the POD's endless live body at ``url`` (``200 video/mp4`` checked) for the
        caller to read (:func:`read_error` maps a failure mid-body) and close."""
        log_url = _LogUrl(url)
        try:
            response = await self._open_media(url, log_url, frozenset({"video/mp4"}))
        except UpstreamError as exc:
            logger.warning("POD live relay failed: %s (%s) for %s", exc.error, exc.status, log_url)
            raise
        return response

    async def _open_media(self, url: str, log_url: _LogUrl, types: frozenset[str]) -> _Response:
        request = self._request(url)
        try:
            response = await _within(
                self.head_timeout,
                self._open(request, log_url, explained=True),
                leftover=_close_response,
            )
        except TimeoutError:
            raise _transport_error(TimeoutError()) from None
        if _media_type(response) not in types:
            await response.aclose()
            raise UpstreamError(
                502, "upstream_bad_live", "the POD answered with something else than live video"
            )
        return response

    async def stream_segment(self, url: str) -> BodyStream:
        """Open the segment at ``url`` and return a response streaming it through.

        Raises :class:`UpstreamError` (before anything is sent) when the POD cannot be reached,
        is too slow to answer, answers an error status, or sends a content type that is not a
        media segment. Return the response from the route right away: it owns the upstream
        connection and closes it when it ends.
        """
        log_url = _LogUrl(url)
        try:
            return await self._stream_segment(url, log_url)
        except UpstreamError as exc:
            logger.warning(
                "POD segment relay failed: %s (%s) for %s", exc.error, exc.status_code, log_url
            )
            raise

    async def _stream_segment(self, url: str, log_url: _LogUrl) -> BodyStream:
        request = self._request(url)
        try:
            response = await _within(
                self.head_timeout, self._open(request, log_url), leftover=_close_response
            )
        except TimeoutError:
            raise _transport_error(TimeoutError()) from None
        media_type = _media_type(response)
        if media_type not in SEGMENT_CONTENT_TYPES:
            await response.aclose()
            logger.debug("POD segment has content type %.60r: %s", media_type, log_url)
            raise UpstreamError(
                502, "upstream_bad_segment", "the POD answered with something else than a segment"
            )
        headers = [("cache-control", "no-store"), ("x-content-type-options", "nosniff")]
        length = response.headers.get("content-length", "")
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if length.isascii() and length.isdigit() and encoding in ("", "identity"):
            headers.append(("content-length", str(int(length))))
        headers.append(("content-type", media_type))
        return BodyStream(
            response,
            response.aiter_bytes(self.chunk_size),
            headers=headers,
            log=logger,
            log_url=log_url,
            label="segment relay",
        )
