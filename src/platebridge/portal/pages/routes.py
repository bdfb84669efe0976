"""The HTML pages. Thin: data from ``services``/``scoping``, markup in ``templates``."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import RedirectResponse, Response

from platebridge.portal.alerts.history import attach_open_incidents
from platebridge.portal.csrf import (
    LOGIN_CSRF_COOKIE,
    form_fields,
    new_login_csrf,
    tokens_match,
)
from platebridge.portal.cursor import MAX_CURSOR_LENGTH, next_cursor, read_cursor
from platebridge.portal.db import Database
from platebridge.portal.deps import (
    ClientIp,
    CurrentUser,
    CursorKey,
    Db,
    Settings,
    clear_session_cookie,
    page,
    public,
    set_session_cookie,
)
from platebridge.portal.errors import ApiError
from platebridge.portal.listing import Page, camera_page, list_cameras, list_pods
from platebridge.portal.listing_query import MAX_QUERY, Filters
from platebridge.portal.models import Pod, Site, User
from platebridge.portal.pages.errors import safe_next
from platebridge.portal.pages.render import render
from platebridge.portal.pages.views import BADGES, with_badges
from platebridge.portal.scoping import get_camera_for_user, scoped_pods, scoped_sites
from platebridge.portal.security_headers import allow_pod_origins, pod_origin
from platebridge.portal.services import auth
from platebridge.portal.settings import PortalSettings
from platebridge.portal.throttle import get_throttle

router = APIRouter(include_in_schema=False)
Slug = Annotated[str, Path(max_length=64)]


def _login_page(request: Request, csrf: str, status_code: int = 200, **context: Any) -> Response:
    context.setdefault("error", "")
    context.setdefault("email", "")
    context.setdefault("next", "/cameras")
    response = render(request, "login.html", status_code, login_csrf=csrf, **context)
    response.set_cookie(
        LOGIN_CSRF_COOKIE, csrf, max_age=3600, httponly=True, samesite="strict", path="/login"
    )
    return response


@router.get("/")
@page
async def home(_user: CurrentUser) -> RedirectResponse:
    return RedirectResponse("/cameras", status_code=303)


@router.get("/login")
@public
async def login_form(request: Request, next: str = "/cameras") -> Response:
    csrf = request.cookies.get(LOGIN_CSRF_COOKIE) or new_login_csrf()
    return _login_page(request, csrf, next=safe_next(next))


@router.post("/login")
@public
async def login_submit(request: Request, db: Db, settings: Settings, ip: ClientIp) -> Response:
    # Refused forms (expired, fields missing) count as failed sign-ins of the source, which is
    # checked before the form is read, as for the JSON login.
    throttle = get_throttle(request)
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE)
    try:
        throttle.check_login_source(ip)
    except ApiError as exc:
        response = _login_page(request, cookie or new_login_csrf(), exc.status, error=exc.message)
        response.headers.update(exc.response_headers() or {})
        return response
    form = await form_fields(request)
    target = safe_next(form.get("next"))
    email = form.get("email", "").strip()[:320]
    if not cookie or not tokens_match(cookie, form.get("csrf_token")):
        throttle.login_refused(ip)
        return _login_page(
            request,
            new_login_csrf(),
            403,
            error="The sign-in form expired. Please try again.",
            email=email,
            next=target,
        )
    password = form.get("password", "")
    if not email or not password or len(password) > 1024:
        throttle.login_refused(ip)
        return _login_page(
            request, cookie, 422, error="Enter your e-mail and password.", email=email, next=target
        )
    try:
        async with db.write() as session:
            result = await auth.login(
                session,
                email,
                password,
                settings.session_ttl,
                throttle=throttle,
                source=ip,
            )
    except ApiError as exc:
        message = "Wrong e-mail or password." if exc.status == 401 else exc.message
        response = _login_page(request, cookie, exc.status, error=message, email=email, next=target)
        if exc.headers and "Retry-After" in exc.headers:
            response.headers["Retry-After"] = exc.headers["Retry-After"]
        return response
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(response, result.token, settings)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
@page
async def logout(request: Request, db: Db, _user: CurrentUser) -> Response:
    async with db.write() as session:
        await auth.logout(session, request.state.session_token)
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(response)
    return response


Q = Annotated[str, Query(max_length=MAX_QUERY)]
View = Literal["cards", "grid"]


async def _camera_list(
    request: Request,
    user: User,
    db: Database,
    settings: PortalSettings,
    key: bytes,
    view: View,
    filters: Filters,
    cursor: str | None,
    *,
    sites: bool = True,
) -> tuple[Page, str | None, list[str]]:
    """One page of cameras for a page or a fragment: the page, its next cursor, site names."""
    scope = filters.scope(f"page-{view}", user)
    after, total = read_cursor(key, scope, cursor, 3)
    async with db.read() as session:
        page = await camera_page(
            session, user, settings.offline_after, filters, after=after, total=total
        )
        if view == "cards":  # the open incidents of the listed cameras and their pods
            await attach_open_incidents(session, user.company_id, page.items)
        names: list[str] = []
        if sites and cursor is None and view == "cards":
            stmt = scoped_sites(user).with_only_columns(Site.name).distinct().order_by(Site.name)
            names = list((await session.execute(stmt)).scalars())
        if view == "grid":
            # Direct-mode PODs of the company may be played by tiles of later pages too (their
            # origins go into this response's CSP; few pods are direct, at most 200 listed).
            direct = scoped_pods(user).where(Pod.stream_mode == "direct").limit(200)
            cols = direct.with_only_columns(Pod.stream_mode, Pod.ip_address, Pod.stream_port)
            _allow_direct(request, [r._asdict() for r in await session.execute(cols)])
    page.items = with_badges(page.items)
    return page, next_cursor(key, scope, page.next_key, page.total), names


def _more_url(view: View, **params: str) -> str:
    query = urlencode({k: v for k, v in params.items() if v} | {"view": view})
    return f"/cameras/more?{query}"


def _card_filters(site: str, status: str, q: str) -> Filters:
    state = status if status in BADGES else None
    return Filters(site=site or None, state=state, q=q.strip() or None)


def _grid_filters(site: str, q: str) -> Filters:
    return Filters(site=site or None, status="active", q=q.strip() or None)


@router.get("/cameras")
@page
async def cameras_page(
    request: Request,
    user: CurrentUser,
    db: Db,
    settings: Settings,
    key: CursorKey,
    site: Annotated[str, Query(max_length=200)] = "",
    status: Annotated[str, Query(max_length=16)] = "",
    q: Q = "",
) -> Response:
    filters = _card_filters(site, status, q)
    page, cursor, sites = await _camera_list(
        request, user, db, settings, key, "cards", filters, None
    )
    return render(
        request,
        "cameras.html",
        cameras=page.items,
        total=page.total,
        sites=sites,
        badges=BADGES,
        site=site,
        status=status,
        q=q,
        next_cursor=cursor,
        more_url=_more_url("cards", site=site, status=status, q=q),
    )


@router.get("/cameras/grid")
@page
async def grid_page(
    request: Request,
    user: CurrentUser,
    db: Db,
    settings: Settings,
    key: CursorKey,
    site: Annotated[str, Query(max_length=200)] = "",
    q: Q = "",
) -> Response:
    page, cursor, _ = await _camera_list(
        request, user, db, settings, key, "grid", _grid_filters(site, q), None
    )
    return render(
        request,
        "grid.html",
        cameras=page.items,
        total=page.total,
        site=site,
        lazy_tiles=True,
        next_cursor=cursor,
        more_url=_more_url("grid", site=site, q=q),
    )


@router.get("/cameras/more")
@page
async def cameras_more(
    request: Request,
    user: CurrentUser,
    db: Db,
    settings: Settings,
    key: CursorKey,
    cursor: Annotated[str | None, Query(max_length=MAX_CURSOR_LENGTH)] = None,
    view: View = "cards",
    site: Annotated[str, Query(max_length=200)] = "",
    status: Annotated[str, Query(max_length=16)] = "",
    q: Q = "",
) -> Response:
    """The next page of the cameras page or the grid as an HTML fragment (the same partials);
    the cursor after it in ``X-Next-Cursor`` (absent: the last page); without a cursor, the
    first page. docs/web.md."""
    filters = _grid_filters(site, q) if view == "grid" else _card_filters(site, status, q)
    page, after, _ = await _camera_list(
        request, user, db, settings, key, view, filters, cursor, sites=False
    )
    response = render(request, "_camera_page.html", cameras=page.items, view=view, lazy_tiles=True)
    if after is not None:
        response.headers["X-Next-Cursor"] = after
    return response


@router.get("/cameras/{pod_id}/{camera_id}")
@page
async def live_page(
    request: Request, user: CurrentUser, db: Db, settings: Settings, pod_id: Slug, camera_id: Slug
) -> Response:
    async with db.read() as session:
        await get_camera_for_user(session, user, pod_id, camera_id)  # 404 page when not ours
        rows = await list_cameras(session, user, settings.offline_after, pod_id=pod_id)
        pods = await list_pods(session, user, settings.offline_after, pod_id=pod_id)
    cam = next(c for c in with_badges(rows) if c["id"] == camera_id)
    _allow_direct(request, pods)
    return render(request, "live.html", cam=cam, pod=pods[0] if pods else None)


def _allow_direct(request: Request, pods: list[dict[str, Any]]) -> None:
    """Direct-mode PODs of this page may be fetched by the player (this response's CSP only)."""
    origins: list[str | None] = []
    for pod in pods:
        if pod["stream_mode"] == "direct":
            for scheme in ("http", "https"):
                origins.append(pod_origin(pod["ip_address"], pod["stream_port"], scheme))
    allow_pod_origins(request, origins)
