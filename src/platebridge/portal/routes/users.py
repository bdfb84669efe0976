"""The user lifecycle API (docs/portal.md, Users lifecycle).

Admins of a company (``AdminUser``; another company's user is 404): ``GET /api/users``,
``GET|PATCH|DELETE /api/users/{user_id}``, ``POST /api/users/invite``,
``POST /api/users/{user_id}/disable|enable|reset-password``. Every user:
``POST /api/account/password``. Anyone with a link: ``POST /api/invites/accept`` (public,
throttled with the sign-ins). Cookie-authenticated calls carry the CSRF token as every other
state-changing route (checked centrally by ``deps.require_user``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from typing_extensions import TypedDict

from platebridge.portal.deps import (
    AdminUser,
    ClientIp,
    CurrentUser,
    Db,
    Settings,
    Throttled,
    public,
    set_session_cookie,
)
from platebridge.portal.errors import ApiError
from platebridge.portal.models import Role
from platebridge.portal.schemas import LoginResult
from platebridge.portal.services import users
from platebridge.portal.services.user_mail import Delivery, base_url_for, deliver

router = APIRouter(prefix="/api", tags=["users"])
UserId = Annotated[str, Path(max_length=64, description="The user's id.")]
NO_STORE = {"Cache-Control": "no-store"}


class UserItem(TypedDict):
    id: str
    email: str
    role: Role
    status: str
    company_id: str
    created_at: str
    disabled_at: str | None
    password_changed_at: str | None


class UserListing(TypedDict):
    users: list[UserItem]


class LinkAnswer(TypedDict):
    """A new link: e-mailed (``sent_to``) or, without SMTP, its ``url`` shown this once."""

    user: UserItem
    link: Delivery


class Ok(TypedDict):
    ok: bool


class InviteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=320)]
    role: Role = "viewer"


class UpdateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Role


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)


class AcceptRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=1024)


def _base(request: Request, settings: Any) -> str:
    return base_url_for(settings, str(request.base_url))


@router.get("/users", response_model=UserListing)
async def list_users(admin: AdminUser, db: Db) -> dict[str, Any]:
    async with db.read() as session:
        rows = await users.list_users(session, admin.company_id)
    return {"users": [users.user_dict(u) for u in rows]}


@router.post("/users/invite", response_model=LinkAnswer, status_code=201)
async def invite(
    body: InviteRequest,
    request: Request,
    response: Response,
    admin: AdminUser,
    db: Db,
    settings: Settings,
) -> dict[str, Any]:
    async with db.write() as session:
        link = await users.invite(
            session,
            admin.company_id,
            body.email,
            body.role,
            actor=admin,
            ttl=settings.user_link_ttl,
        )
    response.headers.update(NO_STORE)
    return {
        "user": users.user_dict(link.user),
        "link": await deliver(settings, link, _base(request, settings)),
    }


@router.get("/users/{user_id}", response_model=UserItem)
async def show_user(user_id: UserId, admin: AdminUser, db: Db) -> dict[str, Any]:
    async with db.read() as session:
        return users.user_dict(await users.get_user(session, admin.company_id, user_id))


@router.patch("/users/{user_id}", response_model=UserItem)
async def update_user(
    user_id: UserId, body: UpdateRequest, admin: AdminUser, db: Db
) -> dict[str, Any]:
    async with db.write() as session:
        user = await users.get_user(session, admin.company_id, user_id)
        return users.user_dict(await users.set_role(session, user, body.role, actor=admin))


@router.post("/users/{user_id}/disable", response_model=UserItem)
async def disable_user(user_id: UserId, admin: AdminUser, db: Db) -> dict[str, Any]:
    async with db.write() as session:
        user = await users.get_user(session, admin.company_id, user_id)
        return users.user_dict(await users.disable(session, user, actor=admin))


@router.post("/users/{user_id}/enable", response_model=UserItem)
async def enable_user(user_id: UserId, admin: AdminUser, db: Db) -> dict[str, Any]:
    async with db.write() as session:
        user = await users.get_user(session, admin.company_id, user_id)
        return users.user_dict(await users.enable(session, user, actor=admin))


@router.delete("/users/{user_id}", response_model=Ok)
async def delete_user(user_id: UserId, admin: AdminUser, db: Db) -> dict[str, Any]:
    async with db.write() as session:
        user = await users.get_user(session, admin.company_id, user_id)
        await users.delete(session, user, actor=admin)
    return {"ok": True}


@router.post("/users/{user_id}/reset-password", response_model=LinkAnswer)
async def reset_password(
    user_id: UserId,
    request: Request,
    response: Response,
    admin: AdminUser,
    db: Db,
    settings: Settings,
) -> dict[str, Any]:
    async with db.write() as session:
        user = await users.get_user(session, admin.company_id, user_id)
        link = await users.issue_reset(session, user, actor=admin, ttl=settings.user_link_ttl)
    response.headers.update(NO_STORE)
    return {
        "user": users.user_dict(link.user),
        "link": await deliver(settings, link, _base(request, settings)),
    }


@router.post("/account/password", response_model=Ok)
async def change_password(
    body: PasswordChange,
    request: Request,
    user: CurrentUser,
    db: Db,
    throttle: Throttled,
    source: ClientIp,
) -> dict[str, Any]:
    async with db.write() as session:
        await users.change_own_password(
            session,
            user,
            body.current_password,
            body.new_password,
            keep_session=request.state.session_token,
            throttle=throttle,
            source=source,
        )
    return {"ok": True}


@router.post("/invites/accept", response_model=LoginResult)
@public
async def accept(
    body: AcceptRequest,
    response: Response,
    db: Db,
    settings: Settings,
    throttle: Throttled,
    source: ClientIp,
) -> dict[str, Any]:
    """Use an invitation or reset link: set the password and sign in (as ``/api/auth/login``)."""
    throttle.check_login_source(source)
    try:
        async with db.write() as session:
            result = await users.accept_link(
                session, body.token, body.password, settings.session_ttl
            )
    except ApiError as exc:
        if exc.code == "invalid_link":
            throttle.login_refused(source)
        raise
    set_session_cookie(response, result.token, settings)
    response.headers.update(NO_STORE)
    return {
        "access_token": result.token,
        "token_type": "bearer",
        "expires_in": settings.session_ttl,
    }
