"""One JSON error shape for everything the portal refuses.

422: ``{"error": "validation_error", "detail": [{"field": "cameras.0.camera_id", "message": …}]}``
others: ``{"error": "<code>", "detail": "<message>"}``. No HTML, no traceback, no echoed input
(pydantic's ``input`` is dropped so a rejected key or password never comes back).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from platebridge.core.errors import (
    FieldError,
    PlateBridgeError,
    code_for_status,
    error_body,
)

log = logging.getLogger("platebridge.portal")


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


def install_error_handlers(app: FastAPI) -> None:
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
        # Log the type and route only: exception texts may carry driver messages with data.
        log.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.url.path)
        return error_response(500, "internal_error", "internal server error")
