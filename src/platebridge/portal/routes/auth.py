"""``POST /api/auth/login`` / ``logout`` and ``GET /api/auth/me``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from platebridge.portal.credentials import client_ip
from platebridge.portal.deps import (
    CurrentUser,
    Db,
    Settings,
    clear_session_cookie,
    csrf_exempt,
    public,
    set_session_cookie,
)
from platebridge.portal.schemas import LoginResult, LogoutResult, Me
from platebridge.portal.services import auth
from platebridge.portal.throttle import get_throttle

router = APIRouter(prefix="/api/auth", tags=["auth"])


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=320)]
    password: str = Field(min_length=1, max_length=1024)


@router.post("/login", response_model=LoginResult)
@public
async def login(
    body: LoginRequest, request: Request, response: Response, db: Db, settings: Settings
) -> dict[str, Any]:
    async with db.write() as session:
        result = await auth.login(
            session,
            body.email,
            body.password,
            settings.session_ttl,
            throttle=get_throttle(request),
            source=client_ip(request),
        )
    set_session_cookie(response, result.token, settings)
    return {
        "access_token": result.token,
        "token_type": "bearer",
        "expires_in": settings.session_ttl,
    }


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
