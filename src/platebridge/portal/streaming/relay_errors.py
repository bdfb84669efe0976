"""What a POD's failure becomes for the viewer: :class:`UpstreamError` and the mapping to it.

Every failure of the relay (:mod:`platebridge.portal.streaming.relay`) is an
:class:`UpstreamError` carrying the status the viewer gets (JSON via :func:`error_response`):
POD unreachable → 502, POD too slow → 504, POD says 404 → 404, POD not ready → 503, a POD's own
refusal naming the camera's state passes on (:func:`pod_refusal`), anything else unexpected →
502. Neither code nor sentence ever contains the upstream URL (it carries the POD token).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Protocol

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse

from platebridge.core.errors import PlateBridgeError
from platebridge.core.redact import redact_text

_MAX_RETRY_AFTER = 3600


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


class RelayedResponse(Protocol):
    """What the relay uses of an upstream response: httpx's, or the lean client's."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    def aiter_bytes(self, chunk_size: int | None = None) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


#: An upstream response whose body is read by the caller (:meth:`PodRelay.open_live`).
UpstreamBody = RelayedResponse


def read_error(exc: BaseException) -> UpstreamError:
    """The viewer-facing error for a failure while reading an upstream body."""
    return transport_error(exc)


def content_type(response: RelayedResponse) -> str:
    value: str = response.headers.get("content-type", "")
    return value.split(";", 1)[0].strip().lower()


def retry_after(response: RelayedResponse) -> int | None:
    value = response.headers.get("retry-after", "").strip()
    if value.isascii() and value.isdigit():
        return min(int(value), _MAX_RETRY_AFTER)
    return None


def status_error(response: RelayedResponse) -> UpstreamError:
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
            retry_after=retry_after(response) or 2,
        )
    return UpstreamError(502, "upstream_error", f"the POD answered HTTP {code}")


#: The POD's own refusals about a camera's state, passed to the viewer with its sentence.
POD_CAMERA_ERRORS = frozenset({"camera_inactive", "camera_error", "live_unavailable"})
#: The POD's refusals of a recorded-footage request (docs/recording.md) and their statuses.
POD_FOOTAGE_ERRORS = {
    "recording_off": 503,
    "no_recording": 404,
    "bad_request": 400,
    "export_failed": 503,
    "busy": 429,
}
_MAX_REFUSAL_BYTES = 4096


async def pod_refusal(response: RelayedResponse) -> UpstreamError | None:
    """A 409/503 JSON refusal of the POD naming the camera's state (why the camera has no
    video: the player can say so), or a footage refusal (:data:`POD_FOOTAGE_ERRORS`), else
    None; the body is read bounded."""
    if response.status_code not in (400, 404, 409, 429, 503):
        return None
    if content_type(response) != "application/json":
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
    if not isinstance(code, str) or not isinstance(detail, str):
        return None
    status = response.status_code
    known = code in POD_CAMERA_ERRORS and status in (409, 503)
    if not (known or POD_FOOTAGE_ERRORS.get(code) == status):
        return None
    return UpstreamError(
        response.status_code,
        code,
        redact_text(detail)[:300],
        retry_after=retry_after(response),
    )


def transport_error(exc: BaseException) -> UpstreamError:
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
