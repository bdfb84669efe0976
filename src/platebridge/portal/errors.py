"""One JSON error shape for everything the portal refuses.

422: ``{"error": "validation_error", "detail": [{"field": "cameras.0.camera_id", "message": …}]}``
others: ``{"error": "<code>", "detail": "<message>"}``. No HTML, no traceback, no echoed input
(pydantic's ``input`` is dropped so a rejected key or password never comes back).

An exception no handler takes is answered 500 by :class:`CatchUnexpected` (the innermost
middleware) and never reaches the ASGI server, which would log a full traceback per request:
:class:`TracebackLimiter` logs at most one traceback per exception site per
:data:`TRACEBACK_INTERVAL` seconds and counts the others, so a storm of bad requests cannot
become a storm of tracebacks.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from platebridge.core.errors import (
    FieldError,
    PlateBridgeError,
    code_for_status,
    error_body,
)

log = logging.getLogger("platebridge.portal")

#: Seconds between two full tracebacks logged for one exception site.
TRACEBACK_INTERVAL = 60.0


class ApiError(PlateBridgeError):
    """Raise from services or routes; rendered as ``{"error": code, "detail": message}``."""


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} not found")


def field_errors(errors: Iterable[Any], strip_loc: Sequence[str] = ("body",)) -> list[FieldError]:
    """Pydantic errors → ``[{"field": "a.0.b", "message": …}]`` (without the rejected input)."""
    out: list[FieldError] = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ())]
        while loc and loc[0] in strip_loc:
            loc = loc[1:]
        message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        out.append({"field": ".".join(loc) or "body", "message": message})
    return out


def validation_response(details: list[FieldError]) -> JSONResponse:
    return JSONResponse(error_body("validation_error", details), status_code=422)


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


class TracebackLimiter:
    """Log unexpected exceptions: type, route and the stack (frames only — exception texts may
    carry driver messages with data), at most once per ``interval`` per site (exception type
    and innermost frame); the ones in between are counted and the count goes with the next
    traceback of that site. At most ``max_sites`` sites are remembered (oldest dropped)."""

    def __init__(
        self,
        interval: float = TRACEBACK_INTERVAL,
        *,
        max_sites: int = 256,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = interval
        self.max_sites = max_sites
        self._clock = clock
        self._sites: OrderedDict[tuple[str, str, int], list[float]] = OrderedDict()

    @staticmethod
    def site(exc: BaseException) -> tuple[str, str, int]:
        tb = exc.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        if tb is None:
            return (type(exc).__name__, "", 0)
        return (type(exc).__name__, tb.tb_frame.f_code.co_filename, tb.tb_lineno)

    def log(self, exc: BaseException, method: str, path: str) -> bool:
        """Log ``exc`` (True) or only count it (False)."""
        site, now = self.site(exc), self._clock()
        seen = self._sites.get(site)
        if seen is not None and now - seen[0] < self.interval:
            seen[1] += 1
            return False
        suppressed = int(seen[1]) if seen is not None else 0
        self._sites.pop(site, None)
        while len(self._sites) >= self.max_sites:
            self._sites.popitem(last=False)
        self._sites[site] = [now, 0]
        stack = "".join(traceback.format_tb(exc.__traceback__))
        log.error(
            "unhandled %s on %s %s (%d more at this site since its last traceback)\n"
            "Traceback (most recent call last):\n%s%s",
            type(exc).__name__,
            method,
            path,
            suppressed,
            stack,
            type(exc).__name__,
        )
        return True


class CatchUnexpected:
    """Innermost middleware: an exception that no exception handler took becomes the 500
    error body here, logged through the app's :class:`TracebackLimiter`."""

    def __init__(self, app: ASGIApp, limiter: TracebackLimiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked_send)
        except Exception as exc:
            self.limiter.log(exc, scope.get("method", ""), scope.get("path", ""))
            if not started:  # else the response is cut short, as the server would do
                await error_response(500, "internal_error", "internal server error")(
                    scope, receive, send
                )


def install_error_handlers(app: FastAPI) -> None:
    limiter = app.state.traceback_limiter = TracebackLimiter()
    # Appended, not add_middleware (which puts it outermost): inside the security headers.
    app.user_middleware.append(Middleware(CatchUnexpected, limiter=limiter))

    @app.exception_handler(PlateBridgeError)
    async def _api_error(_request: Request, exc: PlateBridgeError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.response_headers())

    @app.exception_handler(RequestValidationError)
    async def _request_validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_response(field_errors(exc.errors(), ("body", "query", "path")))

    @app.exception_handler(ValidationError)
    async def _validation(_request: Request, exc: ValidationError) -> JSONResponse:
        return validation_response(field_errors(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = code_for_status(exc.status_code)
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return error_response(exc.status_code, code, message, dict(exc.headers or {}) or None)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Only for exceptions of the outer middlewares (CatchUnexpected takes the others).
        limiter.log(exc, request.method, request.url.path)
        return error_response(500, "internal_error", "internal server error")
