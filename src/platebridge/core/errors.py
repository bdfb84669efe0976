"""The one error shape of PlateBridge, shared by portal, relay, tunnel and POD agent.

Every refusal on the wire is ``{"error": "<code>", "detail": <message>}`` where ``detail`` is a
sentence for humans, or for 422 a list of ``{"field", "message"}``. The body is built only by
:func:`error_body`; the one exception type is :class:`PlateBridgeError`. Pure: no framework
imports, so the POD agent and the portal can both use it.
"""

from __future__ import annotations

from typing_extensions import TypedDict  # pydantic (OpenAPI) needs it before Python 3.12

#: ``error`` code used when only the HTTP status is known.
STATUS_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    500: "internal_error",
    502: "bad_gateway",
    503: "unavailable",
    504: "gateway_timeout",
}


class FieldError(TypedDict):
    field: str
    message: str


class ErrorBody(TypedDict):
    """The JSON body of every error response."""

    error: str
    detail: str | list[FieldError]


def error_body(code: str, detail: str | list[FieldError]) -> ErrorBody:
    """The one place the error body is built."""
    return {"error": code, "detail": detail}


def code_for_status(status: int) -> str:
    return STATUS_CODES.get(status, "error")


class PlateBridgeError(Exception):
    """A refusal with its HTTP status, machine-readable code and human message.

    Raised by services, the relay, the tunnel and the POD agent; each program renders it with
    :meth:`body` and :attr:`status`. The message never contains secrets or upstream URLs.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
        *,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.headers = dict(headers) if headers else None

    def body(self) -> ErrorBody:
        return error_body(self.code, self.message)

    def response_headers(self) -> dict[str, str] | None:
        """Headers to send with the error (``Retry-After`` added when known)."""
        if self.retry_after is None:
            return self.headers
        return {**(self.headers or {}), "Retry-After": str(self.retry_after)}
