"""``POST /api/auth/login`` / ``logout`` and ``GET /api/auth/me``."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from starlette.exceptions import HTTPException as StarletteHTTPException

from platebridge.portal import json_body
from platebridge.portal.credentials import client_ip
from platebridge.portal.deps import (
    ClientIp,
    CurrentUser,
    Db,
    Settings,
    Throttled,
    clear_session_cookie,
    csrf_exempt,
    public,
    set_session_cookie,
)
from platebridge.portal.errors import ApiError
from platebridge.portal.limits import read_body_capped
from platebridge.portal.schemas import LoginResult, LogoutResult, Me
from platebridge.portal.services import auth
from platebridge.portal.throttle import get_throttle

router = APIRouter(prefix="/api/auth", tags=["auth"])

#: Largest login body read (an e-mail of 320 and a password of 1024 characters fit many times).
MAX_LOGIN_BODY = 16 * 1024
_BODY_REFUSALS = frozenset({400, 413, 415, 422})
Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class ScreenedLoginRoute(APIRoute):
    """The login route, guarded before FastAPI parses its body: the source's sign-in throttle
    is checked (429 before any parsing), the body is capped and screened
    (:func:`json_body.check`), and a body refused for any reason — pathological, not JSON, a
    field error — counts as a failed sign-in of the source. Wrong passwords are counted by
    ``services.auth.login`` itself."""

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()

        async def screened(request: Request) -> Response:
            throttle, source = get_throttle(request), client_ip(request)
            throttle.check_login_source(source)
            try:
                body = await read_body_capped(request, MAX_LOGIN_BODY)
                json_body.check(body)
                request._body = body  # FastAPI parses the body read here
                return await handler(request)
            except (RequestValidationError, StarletteHTTPException):
                throttle.login_refused(source)
                raise
            except ApiError as exc:
                if exc.status in _BODY_REFUSALS:
                    throttle.login_refused(source)
                raise

        return screened


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=320)]
    password: str = Field(min_length=1, max_length=1024)


@public
async def login(
    body: LoginRequest,
    response: Response,
    db: Db,
    settings: Settings,
    throttle: Throttled,
    source: ClientIp,
) -> dict[str, Any]:
    async with db.write() as session:
        result = await auth.login(
            session,
            body.email,
            body.password,
            settings.session_ttl,
            throttle=throttle,
            source=source,
        )
    set_session_cookie(response, result.token, settings)
    return {
        "access_token": result.token,
        "token_type": "bearer",
        "expires_in": settings.session_ttl,
    }


router.add_api_route(
    "/login",
    login,
    methods=["POST"],
    response_model=LoginResult,
    route_class_override=ScreenedLoginRoute,
)


@router.post("/logout", response_model=LogoutResult)
@csrf_exempt
async def logout(
    request: Request, response: Response, db: Db, _user: CurrentUser
) -> dict[str, Any]:
    async with db.write() as session:
        await auth.logout(session, request.state.session_token)
    clear_session_cookie(response)
    return {"ok": True}


@router.get("/me", response_model=Me)
async def me(user: CurrentUser) -> dict[str, Any]:
    return {
        "id": str(user.id),
        "email": user.email,
        "role": user.role,
        "company_id": str(user.company_id),
    }
