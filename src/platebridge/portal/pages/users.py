"""The users pages: ``/users`` (company admins: invite, role, disable, enable, reset password,
delete), ``/account`` (one's own password) and ``/invite?token=`` (public: choose a password
from an invitation or reset link, then signed in). Each form calls ``services.users`` as the
JSON API and the CLI do; a link made without SMTP is shown once on the answering page
(``Cache-Control: no-store``). Refusals (409 last admin, 422 bad value) re-render the page with
the message and the status.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import RedirectResponse, Response

from platebridge.portal.csrf import LOGIN_CSRF_COOKIE, form_fields, new_login_csrf, tokens_match
from platebridge.portal.db import Database
from platebridge.portal.deps import (
    AdminUser,
    ClientIp,
    CurrentUser,
    Db,
    Settings,
    Throttled,
    page,
    public,
    set_session_cookie,
)
from platebridge.portal.errors import ApiError
from platebridge.portal.models import User
from platebridge.portal.pages.render import render
from platebridge.portal.services import users
from platebridge.portal.services.user_mail import base_url_for, deliver
from platebridge.portal.settings import PortalSettings
from platebridge.portal.throttle import get_throttle

router = APIRouter(include_in_schema=False)
UserId = Annotated[str, Path(max_length=64)]
INVITE_PATH = users.LINK_PATH


async def _users_page(
    request: Request,
    admin: User,
    db: Database,
    *,
    shown: dict[str, Any] | None = None,
    error: str = "",
    status_code: int = 200,
) -> Response:
    async with db.read() as session:
        rows = await users.list_users(session, admin.company_id)
    return render(
        request,
        "users.html",
        status_code,
        no_store=shown is not None,
        users=[users.user_dict(u) for u in rows],
        roles=users.ROLES,
        shown=shown,
        error=error,
    )


async def _shown_link(
    request: Request, settings: PortalSettings, link: users.IssuedLink
) -> dict[str, Any]:
    delivery = await deliver(settings, link, base_url_for(settings, str(request.base_url)))
    return {"email": link.user.email, **delivery}


@router.get("/users")
@page
async def users_page(request: Request, admin: AdminUser, db: Db) -> Response:
    return await _users_page(request, admin, db)


@router.post("/users/invite")
@page
async def invite_form(request: Request, admin: AdminUser, db: Db, settings: Settings) -> Response:
    form = await form_fields(request)
    try:
        async with db.write() as session:
            link = await users.invite(
                session,
                admin.company_id,
                form.get("email", "")[:320],
                form.get("role", "viewer"),
                actor=admin,
                ttl=settings.user_link_ttl,
            )
        shown = await _shown_link(request, settings, link)
    except ApiError as exc:
        return await _users_page(request, admin, db, error=exc.message, status_code=exc.status)
    return await _users_page(request, admin, db, shown=shown)


async def _act(request: Request, admin: User, db: Database, user_id: str, what: str) -> Response:
    form = await form_fields(request)
    try:
        async with db.write() as session:
            user = await users.get_user(session, admin.company_id, user_id)
            if what == "role":
                await users.set_role(session, user, form.get("role", ""), actor=admin)
            elif what == "disable":
                await users.disable(session, user, actor=admin)
            elif what == "enable":
                await users.enable(session, user, actor=admin)
            else:
                await users.delete(session, user, actor=admin)
    except ApiError as exc:
        if exc.status == 404:
            raise
        return await _users_page(request, admin, db, error=exc.message, status_code=exc.status)
    return RedirectResponse("/users", status_code=303)


@router.post("/users/{user_id}/role")
@page
async def role_form(request: Request, user_id: UserId, admin: AdminUser, db: Db) -> Response:
    return await _act(request, admin, db, user_id, "role")


@router.post("/users/{user_id}/disable")
@page
async def disable_form(request: Request, user_id: UserId, admin: AdminUser, db: Db) -> Response:
    return await _act(request, admin, db, user_id, "disable")


@router.post("/users/{user_id}/enable")
@page
async def enable_form(request: Request, user_id: UserId, admin: AdminUser, db: Db) -> Response:
    return await _act(request, admin, db, user_id, "enable")


@router.post("/users/{user_id}/delete")
@page
async def delete_form(request: Request, user_id: UserId, admin: AdminUser, db: Db) -> Response:
    return await _act(request, admin, db, user_id, "delete")


@router.post("/users/{user_id}/reset-password")
@page
async def reset_form(
    request: Request, user_id: UserId, admin: AdminUser, db: Db, settings: Settings
) -> Response:
    try:
        async with db.write() as session:
            user = await users.get_user(session, admin.company_id, user_id)
            link = await users.issue_reset(session, user, actor=admin, ttl=settings.user_link_ttl)
        shown = await _shown_link(request, settings, link)
    except ApiError as exc:
        if exc.status == 404:
            raise
        return await _users_page(request, admin, db, error=exc.message, status_code=exc.status)
    return await _users_page(request, admin, db, shown=shown)


@router.get("/account")
@page
async def account_page(request: Request, _user: CurrentUser) -> Response:
    return render(request, "account.html", error="", done=False)


@router.post("/account/password")
@page
async def account_password(
    request: Request, user: CurrentUser, db: Db, throttle: Throttled, ip: ClientIp
) -> Response:
    form = await form_fields(request)
    new = form.get("new_password", "")
    if new != form.get("confirm_password", ""):
        return render(request, "account.html", 422, error="The new passwords differ.", done=False)
    try:
        async with db.write() as session:
            await users.change_own_password(
                session,
                user,
                form.get("current_password", "")[:1024],
                new,
                keep_session=request.state.session_token,
                throttle=throttle,
                source=ip,
            )
    except ApiError as exc:
        response = render(request, "account.html", exc.status, error=exc.message, done=False)
        response.headers.update(exc.response_headers() or {})
        return response
    return render(request, "account.html", error="", done=True)


def _invite_page(
    request: Request, csrf: str, token: str, purpose: str, email: str, status_code: int = 200,
    error: str = "",
) -> Response:  # fmt: skip
    response = render(
        request,
        "invite.html",
        status_code,
        no_store=True,
        login_csrf=csrf,
        token=token,
        purpose=purpose,
        email=email,
        error=error,
    )
    response.headers["Referrer-Policy"] = "no-referrer"  # the token is in this page's URL
    response.set_cookie(
        LOGIN_CSRF_COOKIE, csrf, max_age=3600, httponly=True, samesite="strict", path=INVITE_PATH
    )
    return response


@router.get(INVITE_PATH)
@public
@page
async def invite_page(
    request: Request, db: Db, token: Annotated[str, Query(max_length=128)] = ""
) -> Response:
    async with db.read() as session:
        link, user = await users.live_link(session, token)
    csrf = request.cookies.get(LOGIN_CSRF_COOKIE) or new_login_csrf()
    return _invite_page(request, csrf, token, link.purpose, user.email)


@router.post(INVITE_PATH)
@public
@page
async def invite_submit(request: Request, db: Db, settings: Settings, ip: ClientIp) -> Response:
    throttle = get_throttle(request)
    throttle.check_login_source(ip)
    form = await form_fields(request)
    token = form.get("token", "")[:128]
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE)
    async with db.read() as session:
        try:
            link, user = await users.live_link(session, token)
        except ApiError:
            throttle.login_refused(ip)
            raise
    if not cookie or not tokens_match(cookie, form.get("csrf_token")):
        error = "The form expired. Please try again."
        return _invite_page(request, new_login_csrf(), token, link.purpose, user.email, 403, error)
    password = form.get("password", "")
    if password != form.get("confirm_password", ""):
        return _invite_page(
            request, cookie, token, link.purpose, user.email, 422, "The passwords differ."
        )
    try:
        async with db.write() as session:
            result = await users.accept_link(session, token, password, settings.session_ttl)
    except ApiError as exc:
        if exc.status == 404:
            raise
        return _invite_page(
            request, cookie, token, link.purpose, user.email, exc.status, exc.message
        )
    response = RedirectResponse("/cameras", status_code=303)
    set_session_cookie(response, result.token, settings)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path=INVITE_PATH)
    return response
