"""Relay a POD's HLS playlist, segments and live body to the browser (Method 2 — portal proxy).

One :class:`PodRelay` per portal process (created in the app lifespan by
:meth:`PodRelay.create`, closed with :meth:`PodRelay.aclose`) runs each viewer's request to a
POD over the process's pooled clients (:mod:`platebridge.portal.streaming.relay_pools`). Every
failure becomes an :class:`~platebridge.portal.streaming.relay_errors.UpstreamError` carrying
the status the viewer gets (:mod:`platebridge.portal.streaming.relay_errors`). The upstream URL
carries the POD token (``?token=…``), so it never appears in an error, and only redacted in
logs.

Segments are streamed chunk by chunk, never held whole. The upstream status and content type
are checked *before* the response starts; once it has started, an upstream failure can only cut
the response short (the connection to the viewer is closed, so the player sees a truncated
segment, not a complete-looking one). A viewer who disconnects cancels the relay at once and the
upstream connection is closed — not returned to the pool half-read.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from types import TracebackType
from typing import Any, TypeVar

import httpx

from platebridge.core.redact import redact_text
from platebridge.portal.body_stream import BodyStream
from platebridge.portal.streaming.hls_rewrite import MAX_PLAYLIST_BYTES
from platebridge.portal.streaming.relay_errors import (
    RelayedResponse,
    content_type,
    pod_refusal,
    status_error,
    transport_error,
)

# Re-exported: ``streaming/live.py`` still names these ``relay.…`` (to move to relay_errors).
from platebridge.portal.streaming.relay_errors import UpstreamBody as UpstreamBody
from platebridge.portal.streaming.relay_errors import UpstreamError as UpstreamError
from platebridge.portal.streaming.relay_errors import read_error as read_error
from platebridge.portal.streaming.relay_pools import (
    DEFAULT_KEEPALIVE_EXPIRY,
    LEAN_CHUNK_SIZE,
    relay_pools,
)
from platebridge.portal.streaming.ssrf import AddressRefused, IPNetwork, check_pod_address
from platebridge.portal.streaming.upstream_http import UpstreamPool

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


class _LogUrl:
    """``redact_text(url)``, computed only when a log record is actually written."""

    __slots__ = ("_url",)

    def __init__(self, url: str) -> None:
        self._url = url

    def __str__(self) -> str:
        return redact_text(self._url)


async def _close_response(response: RelayedResponse) -> None:
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


async def _logged(what: str, url: str, run: Callable[[str, _LogUrl], Awaitable[T]]) -> T:
    """``run(url, log_url)``; a failure is logged (``POD <what> relay failed``) and raised."""
    log_url = _LogUrl(url)
    try:
        return await run(url, log_url)
    except UpstreamError as exc:
        logger.warning("POD %s relay failed: %s (%s) for %s", what, exc.error, exc.status, log_url)
        raise


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
        client, pool = relay_pools(
            connect_timeout,
            read_timeout,
            max_connections,
            max_keepalive_connections=max_keepalive_connections,
            keepalive_expiry=keepalive_expiry,
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

    async def _send(self, url: httpx.URL) -> RelayedResponse:
        if self._pool is not None and url.scheme == "http":
            host = url.raw_host.decode("ascii")
            return await self._pool.get(host, url.port or 80, url.raw_path)
        return await self._client.send(self._client.build_request("GET", url), stream=True)

    async def _open(
        self, request: httpx.URL, log_url: _LogUrl, *, explained: bool = False
    ) -> RelayedResponse:
        """Send a GET of ``request``; return the 200 response with its body not yet read.

        ``explained``: a POD refusal naming the camera's state passes on (:func:`pod_refusal`).
        """
        try:
            response = await self._send(request)
        except (httpx.HTTPError, TimeoutError) as exc:
            logger.debug("POD request failed with %s: %s", type(exc).__name__, log_url)
            raise transport_error(exc) from None
        if response.status_code != 200:
            try:
                refusal = await pod_refusal(response) if explained else None
            except (httpx.HTTPError, TimeoutError):
                refusal = None
            finally:
                await response.aclose()
            logger.debug("POD answered HTTP %s: %s", response.status_code, log_url)
            raise refusal or status_error(response)
        return response

    async def fetch_playlist(self, url: str) -> str:
        """The playlist text at ``url`` (checked: type, size, UTF-8, ``#EXTM3U``).

        Raises :class:`UpstreamError` on any failure.
        """
        return await _logged("playlist", url, self._fetch_playlist)

    async def _fetch_playlist(self, url: str, log_url: _LogUrl) -> str:
        request = self._request(url)
        try:
            body = await _within(self.playlist_timeout, self._playlist_body(request, log_url))
        except TimeoutError:
            raise transport_error(TimeoutError()) from None
        except httpx.HTTPError as exc:
            logger.debug("POD playlist read failed with %s: %s", type(exc).__name__, log_url)
            raise transport_error(exc) from None
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

    async def _read_playlist(self, response: RelayedResponse) -> bytes:
        if content_type(response) not in PLAYLIST_CONTENT_TYPES:
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
        return await _logged("live", url, self._open_live)

    async def _open_head(self, url: str, log_url: _LogUrl, *, explained: bool) -> RelayedResponse:
        """:meth:`_open` within ``head_timeout`` (a late answer is closed)."""
        request = self._request(url)
        try:
            return await _within(
                self.head_timeout,
                self._open(request, log_url, explained=explained),
                leftover=_close_response,
            )
        except TimeoutError:
            raise transport_error(TimeoutError()) from None

    async def _open_live(self, url: str, log_url: _LogUrl) -> RelayedResponse:
        response = await self._open_head(url, log_url, explained=True)
        if content_type(response) != "video/mp4":
            await response.aclose()
            raise UpstreamError(
                502, "upstream_bad_live", "the POD answered with something else than live video"
            )
        return response

    async def open_body(self, url: str, media_types: frozenset[str], what: str) -> UpstreamBody:
        """Open the POD's answer at ``url`` (a 200 of one of ``media_types``, its head within
        ``head_timeout``; a POD refusal naming its reason passes on) for the caller to read
        and close: the footage routes (``streaming/footage.py``), which pass headers on."""

        async def run(target: str, log_url: _LogUrl) -> RelayedResponse:
            response = await self._open_head(target, log_url, explained=True)
            if content_type(response) not in media_types:
                await response.aclose()
                raise UpstreamError(502, "upstream_bad_response", f"the POD sent no {what}")
            return response

        return await _logged(what, url, run)

    async def stream_segment(self, url: str) -> BodyStream:
        """Open the segment at ``url`` and return a response streaming it through.

        Raises :class:`UpstreamError` (before anything is sent) when the POD cannot be reached,
        is too slow to answer, answers an error status, or sends a content type that is not a
        media segment. Return the response from the route right away: it owns the upstream
        connection and closes it when it ends.
        """
        return await _logged("segment", url, self._stream_segment)

    async def _stream_segment(self, url: str, log_url: _LogUrl) -> BodyStream:
        response = await self._open_head(url, log_url, explained=False)
        media_type = content_type(response)
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
