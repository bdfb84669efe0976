"""The alerts pages: ``/alerts`` (every user: open and resolved incidents, filterable, one's own
site subscriptions; admins also the delivery log) and ``/alerts/settings`` (admins: the rules,
the endpoints — add, enable, disable, delete, send test, new secret).

Each form calls ``alerts.admin`` as the JSON API does; a webhook's secret is shown once
on the page answering its creation or rotation (``Cache-Control: no-store``). Refusals (422 bad
value, 409) re-render the settings page with the message; another company's endpoint or site is
the 404 page.
"""

from __future__ import annotations

from typing import Annotated, Any, get_args

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import RedirectResponse, Response

from platebridge.portal.alerts import admin as alerts_admin
from platebridge.portal.alerts import history as alerts_history
from platebridge.portal.alerts.enqueue import TITLES
from platebridge.portal.alerts.models import ChannelKind, IncidentKind
from platebridge.portal.alerts.rules import AlertRules
from platebridge.portal.csrf import form_fields
from platebridge.portal.cursor import MAX_CURSOR_LENGTH, next_cursor, read_cursor
from platebridge.portal.db import Database
from platebridge.portal.deps import AdminUser, CurrentUser, CursorKey, Db, page
from platebridge.portal.errors import ApiError
from platebridge.portal.models import User
from platebridge.portal.pages.render import render

router = APIRouter(include_in_schema=False)
Id = Annotated[str, Path(max_length=64)]
PAGE = 50
KINDS: tuple[str, ...] = get_args(IncidentKind)
#: The rules form: field, label (thresholds in seconds; empty = off).
RULE_FIELDS: tuple[tuple[str, str], ...] = (
    ("pod_offline_after", "POD offline (no heartbeat) for"),
    ("camera_error_after", "Camera in error or stalled for"),
    ("codec_unplayable_after", "Camera codec not playable in browsers for"),
    ("recording_stopped_after", "Recording stopped for"),
    ("disk_low_after", "POD disk nearly full for"),
    ("tunnel_down_after", "Tunnel down (tunnel-mode POD) for"),
)


def _state(value: str) -> alerts_history.ListedState | None:
    return "open" if value == "open" else "resolved" if value == "resolved" else None


def _kind(value: str) -> Any:
    return value if value in KINDS else None


@router.get("/alerts")
@page
async def alerts_page(
    request: Request,
    user: CurrentUser,
    db: Db,
    key: CursorKey,
    state: Annotated[str, Query(max_length=16)] = "",
    kind: Annotated[str, Query(max_length=32)] = "",
    site: Annotated[str, Query(max_length=200)] = "",
    cursor: Annotated[str | None, Query(max_length=MAX_CURSOR_LENGTH)] = None,
) -> Response:
    filters = alerts_history.IncidentFilters(
        state=_state(state), kind=_kind(kind), site=site or None
    )
    scope = "page-" + filters.scope(user)
    after, _ = read_cursor(key, scope, cursor, 2)
    deliveries: list[dict[str, Any]] = []
    async with db.read() as session:
        listing = await alerts_history.incident_page(
            session, user, filters, after=after, limit=PAGE
        )
        sites = await alerts_admin.subscriptions(session, user)
        if user.role == "admin":
            log = await alerts_history.delivery_page(
                session, user, state=None, endpoint=None, after=None, limit=PAGE
            )
            deliveries = log.items
    more = next_cursor(key, scope, listing.next_key, 0)
    return render(
        request,
        "alerts.html",
        incidents=listing.items,
        deliveries=deliveries,
        sites=sites,
        kinds=[(k, TITLES.get(k, k)) for k in KINDS],
        state=state,
        kind=kind,
        site=site,
        next_cursor=more,
        first_page=cursor is None,
    )


@router.post("/alerts/subscriptions/{site_id}")
@page
async def subscription_form(request: Request, user: CurrentUser, db: Db, site_id: Id) -> Response:
    on = (await form_fields(request)).get("subscribe", "") == "1"
    async with db.write() as session:
        await alerts_admin.subscribe(session, user, site_id, on)
    return RedirectResponse("/alerts", status_code=303)


# --- settings (admins) -------------------------------------------------------------------


async def _settings_page(
    request: Request,
    user: User,
    db: Database,
    *,
    shown: dict[str, Any] | None = None,
    error: str = "",
    notice: str = "",
    status_code: int = 200,
) -> Response:
    async with db.read() as session:
        rules = await alerts_admin.get_rules(session, user.company_id)
        endpoints = await alerts_admin.list_endpoints(session, user.company_id)
    return render(
        request,
        "alerts_settings.html",
        status_code,
        no_store=shown is not None,
        rules=rules.model_dump(),
        rule_fields=RULE_FIELDS,
        endpoints=[alerts_admin.endpoint_dict(e) for e in endpoints],
        shown=shown,
        error=error,
        notice=notice,
    )


def _again(exc: ApiError) -> str:
    if exc.status == 404:
        raise exc
    return exc.message


@router.get("/alerts/settings")
@page
async def settings_page(request: Request, user: AdminUser, db: Db) -> Response:
    return await _settings_page(request, user, db)


def _rules_from_form(form: dict[str, str]) -> AlertRules:
    doc: dict[str, Any] = {}
    for name, _label in RULE_FIELDS:
        value = form.get(name, "").strip()
        doc[name] = None if value == "" else value
    for name in ("disk_low_percent", "recover_after"):
        value = form.get(name, "").strip()
        if value != "":
            doc[name] = value
    return alerts_admin.check_rules(doc)


@router.post("/alerts/settings/rules")
@page
async def rules_form(request: Request, user: AdminUser, db: Db) -> Response:
    form = await form_fields(request)
    try:
        rules = _rules_from_form(form)
        async with db.write() as session:
            await alerts_admin.set_rules(session, user.company_id, rules, user)
    except ApiError as exc:
        return await _settings_page(request, user, db, error=_again(exc), status_code=exc.status)
    return RedirectResponse("/alerts/settings", status_code=303)


@router.post("/alerts/settings/endpoints")
@page
async def add_endpoint(request: Request, user: AdminUser, db: Db) -> Response:
    form = await form_fields(request)
    kind: ChannelKind = "email" if form.get("kind") == "email" else "webhook"
    recipients = [a for a in form.get("recipients", "").replace("\n", ",").split(",") if a.strip()]
    try:
        async with db.write() as session:
            made = await alerts_admin.create_endpoint(
                session,
                user,
                kind,
                form.get("name", "")[:200],
                url=form.get("url", "")[: alerts_admin.MAX_URL] if kind == "webhook" else None,
                recipients=recipients[: alerts_admin.MAX_RECIPIENTS + 1]
                if kind == "email"
                else None,
            )
            name = made.endpoint.name
    except ApiError as exc:
        return await _settings_page(request, user, db, error=_again(exc), status_code=exc.status)
    if not made.secret:
        return RedirectResponse("/alerts/settings", status_code=303)
    return await _settings_page(request, user, db, shown={"name": name, "secret": made.secret})


async def _endpoint_action(
    request: Request, user: User, db: Database, endpoint_id: str, what: str
) -> Response:
    shown: dict[str, Any] | None = None
    notice = ""
    try:
        async with db.write() as session:
            found = await alerts_admin.get_endpoint(session, user, endpoint_id)
            if what in ("enable", "disable"):
                await alerts_admin.update_endpoint(session, user, found, enabled=what == "enable")
            elif what == "delete":
                await alerts_admin.delete_endpoint(session, user, found)
            elif what == "test":
                rows = await alerts_admin.send_test(session, user, found)
                notice = (
                    f"Test notice queued for {found.name} ({len(rows)} target"
                    f"{'' if len(rows) == 1 else 's'}): see the delivery log on the alerts page."
                )
            else:
                made = await alerts_admin.rotate_secret(session, user, found)
                shown = {"name": found.name, "secret": made.secret}
    except ApiError as exc:
        return await _settings_page(request, user, db, error=_again(exc), status_code=exc.status)
    if shown is None and not notice:
        return RedirectResponse("/alerts/settings", status_code=303)
    return await _settings_page(request, user, db, shown=shown, notice=notice)


@router.post("/alerts/settings/endpoints/{endpoint_id}/enable")
@page
async def enable_form(request: Request, user: AdminUser, db: Db, endpoint_id: Id) -> Response:
    return await _endpoint_action(request, user, db, endpoint_id, "enable")


@router.post("/alerts/settings/endpoints/{endpoint_id}/disable")
@page
async def disable_form(request: Request, user: AdminUser, db: Db, endpoint_id: Id) -> Response:
    return await _endpoint_action(request, user, db, endpoint_id, "disable")


@router.post("/alerts/settings/endpoints/{endpoint_id}/delete")
@page
async def delete_form(request: Request, user: AdminUser, db: Db, endpoint_id: Id) -> Response:
    return await _endpoint_action(request, user, db, endpoint_id, "delete")


@router.post("/alerts/settings/endpoints/{endpoint_id}/test")
@page
async def test_form(request: Request, user: AdminUser, db: Db, endpoint_id: Id) -> Response:
    return await _endpoint_action(request, user, db, endpoint_id, "test")


@router.post("/alerts/settings/endpoints/{endpoint_id}/rotate-secret")
@page
async def rotate_form(request: Request, user: AdminUser, db: Db, endpoint_id: Id) -> Response:
    return await _endpoint_action(request, user, db, endpoint_id, "rotate")
