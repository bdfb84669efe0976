"""Errors on pages render as pages: signed-out → redirect to ``/login``, other refusals (404 for
other companies' cameras, 403 for viewers on admin pages) → a page naming the problem."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from starlette.responses import RedirectResponse, Response

from platebridge.portal.deps import LoginRequired, is_page
from platebridge.portal.errors import ApiError, error_response
from platebridge.portal.pages.render import render


def safe_next(target: str | None) -> str:
    """Only local paths (``/cameras…``), never ``//host`` or a scheme: no open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/cameras"
    return target


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(safe_next(target), safe='/')}", status_code=303)


def install_page_handlers(app: FastAPI) -> None:
    @app.exception_handler(LoginRequired)
    async def _login_required(request: Request, _exc: LoginRequired) -> Response:
        return login_redirect(request)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        if is_page(request):
            return render(
                request, "error.html", exc.status, title=_title(exc.status), message=exc.message
            )
        return error_response(exc.status, exc.code, exc.message, exc.headers)


def _title(status: int) -> str:
    return {403: "Not allowed", 404: "Not found", 429: "Too many attempts"}.get(status, "Error")
