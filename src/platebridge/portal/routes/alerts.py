"""The alerts API (docs/alerts.md, "API and pages"), scoped to the caller's company.

Every user reads ``GET /api/alerts/rules``; admins (``AdminUser``): ``PUT /api/alerts/rules``;
``GET|POST /api/alerts/endpoints``, ``GET|PATCH|DELETE /api/alerts/endpoints/{endpoint_id}``,
``POST …/{endpoint_id}/test`` (202, the queued delivery ids) and
``POST …/{endpoint_id}/rotate-secret``; ``GET /api/alerts/deliveries``.
Every user: ``GET /api/alerts/incidents`` and their own ``/api/alerts/subscriptions[/{site_id}]``.
A webhook's secret is in the answer of its creation and rotation only (``Cache-Control:
no-store``). Another company's endpoint or site is 404. Cookie-authenticated calls carry the
CSRF token (``deps.require_user``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from platebridge.portal.alerts import admin as alerts_admin
from platebridge.portal.alerts import history as alerts_history
from platebridge.portal.alerts.models import DeliveryState, IncidentKind
from platebridge.portal.alerts.rules import AlertRules
from platebridge.portal.cursor import MAX_CURSOR_LENGTH, next_cursor, read_cursor
from platebridge.portal.deps import AdminUser, CurrentUser, CursorKey, Db
from platebridge.portal.listing_query import DEFAULT_LIMIT, MAX_LIMIT

router = APIRouter(prefix="/api/alerts", tags=["alerts"])
EndpointId = Annotated[str, Path(max_length=64, description="The endpoint's id.")]
SiteId = Annotated[str, Path(max_length=64, description="The site's id.")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"Page size, 1-{MAX_LIMIT}.")]
Cursor = Annotated[
    str | None,
    Query(max_length=MAX_CURSOR_LENGTH, description="The previous page's next_cursor."),
]
NO_STORE = {"Cache-Control": "no-store"}


class NewEndpoint(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["webhook", "email"]
    name: str = Field(min_length=1, max_length=200)
    url: str | None = Field(None, max_length=alerts_admin.MAX_URL, description="webhook only")
    recipients: list[Annotated[str, Field(max_length=320)]] | None = Field(
        None, max_length=alerts_admin.MAX_RECIPIENTS, description="e-mail only"
    )
    enabled: bool = True


class EndpointChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, min_length=1, max_length=200)
    url: str | None = Field(None, max_length=alerts_admin.MAX_URL)
    recipients: list[Annotated[str, Field(max_length=320)]] | None = Field(
        None, max_length=alerts_admin.MAX_RECIPIENTS
    )
    enabled: bool | None = None


@router.get("/rules")
async def get_rules(user: CurrentUser, db: Db) -> dict[str, Any]:
    async with db.read() as session:
        rules = await alerts_admin.get_rules(session, user.company_id)
    return {"rules": rules.model_dump()}


@router.put("/rules")
async def put_rules(body: AlertRules, user: AdminUser, db: Db) -> dict[str, Any]:
    """Replace the rules (absent fields: their defaults; ``null``: that condition off)."""
    async with db.write() as session:
        rules = await alerts_admin.set_rules(session, user.company_id, body, user)
    return {"rules": rules.model_dump()}


@router.get("/endpoints")
async def list_endpoints(user: AdminUser, db: Db) -> dict[str, Any]:
    async with db.read() as session:
        rows = await alerts_admin.list_endpoints(session, user.company_id)
    return {"endpoints": [alerts_admin.endpoint_dict(e) for e in rows]}


@router.post("/endpoints", status_code=201)
async def create_endpoint(
    body: NewEndpoint, response: Response, user: AdminUser, db: Db
) -> dict[str, Any]:
    """A webhook's answer carries ``secret`` (the HMAC key) this once."""
    async with db.write() as session:
        made = await alerts_admin.create_endpoint(
            session,
            user,
            body.kind,
            body.name,
            url=body.url,
            recipients=body.recipients,
            enabled=body.enabled,
        )
        result = alerts_admin.endpoint_dict(made.endpoint)
    if made.secret:
        result["secret"] = made.secret
        response.headers.update(NO_STORE)
    return result


@router.get("/endpoints/{endpoint_id}")
async def show_endpoint(endpoint_id: EndpointId, user: AdminUser, db: Db) -> dict[str, Any]:
    async with db.read() as session:
        found = await alerts_admin.get_endpoint(session, user, endpoint_id)
        return alerts_admin.endpoint_dict(found)


@router.patch("/endpoints/{endpoint_id}")
async def update_endpoint(
    endpoint_id: EndpointId, body: EndpointChange, user: AdminUser, db: Db
) -> dict[str, Any]:
    async with db.write() as session:
        found = await alerts_admin.get_endpoint(session, user, endpoint_id)
        await alerts_admin.update_endpoint(
            session,
            user,
            found,
            name=body.name,
            url=body.url,
            recipients=body.recipients,
            enabled=body.enabled,
        )
        return alerts_admin.endpoint_dict(found)


@router.delete("/endpoints/{endpoint_id}")
async def delete_endpoint(endpoint_id: EndpointId, user: AdminUser, db: Db) -> dict[str, Any]:
    async with db.write() as session:
        found = await alerts_admin.get_endpoint(session, user, endpoint_id)
        await alerts_admin.delete_endpoint(session, user, found)
    return {"deleted": True, "id": endpoint_id}


@router.post("/endpoints/{endpoint_id}/rotate-secret")
async def rotate_secret(
    endpoint_id: EndpointId, response: Response, user: AdminUser, db: Db
) -> dict[str, Any]:
    """A webhook's new secret, shown this once; the old one stops signing at once."""
    async with db.write() as session:
        found = await alerts_admin.get_endpoint(session, user, endpoint_id)
        made = await alerts_admin.rotate_secret(session, user, found)
        result = alerts_admin.endpoint_dict(made.endpoint)
    response.headers.update(NO_STORE)
    return {**result, "secret": made.secret}


@router.post("/endpoints/{endpoint_id}/test", status_code=202)
async def send_test(endpoint_id: EndpointId, user: AdminUser, db: Db) -> dict[str, Any]:
    """Queue a test notice per target; the delivery log shows how each went."""
    async with db.write() as session:
        found = await alerts_admin.get_endpoint(session, user, endpoint_id)
        rows = await alerts_admin.send_test(session, user, found)
        ids = [str(r.id) for r in rows]
    return {"queued": len(ids), "delivery_ids": ids}


@router.get("/deliveries")
async def deliveries(
    user: AdminUser,
    db: Db,
    key: CursorKey,
    state: Annotated[DeliveryState | None, Query()] = None,
    endpoint: Annotated[str | None, Query(max_length=64, description="An endpoint id.")] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """The delivery log, newest first."""
    scope = alerts_history.delivery_scope(user, state, endpoint)
    after, _ = read_cursor(key, scope, cursor, 2)
    async with db.read() as session:
        page = await alerts_history.delivery_page(
            session, user, state=state, endpoint=endpoint, after=after, limit=limit
        )
    return {
        "deliveries": page.items,
        "next_cursor": next_cursor(key, scope, page.next_key, 0),
        "limit": limit,
    }


@router.get("/incidents")
async def incidents(
    user: CurrentUser,
    db: Db,
    key: CursorKey,
    state: Annotated[
        alerts_history.ListedState | None,
        Query(description="open or resolved (default both; pending ones are not alerts yet)."),
    ] = None,
    kind: Annotated[IncidentKind | None, Query()] = None,
    site: Annotated[str | None, Query(max_length=200, description="Site name or id.")] = None,
    pod_id: Annotated[str | None, Query(max_length=64)] = None,
    camera_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """The company's incidents, newest onset first."""
    filters = alerts_history.IncidentFilters(
        state=state, kind=kind, site=site, pod_id=pod_id, camera_id=camera_id
    )
    scope = filters.scope(user)
    after, _ = read_cursor(key, scope, cursor, 2)
    async with db.read() as session:
        page = await alerts_history.incident_page(session, user, filters, after=after, limit=limit)
    return {
        "incidents": page.items,
        "next_cursor": next_cursor(key, scope, page.next_key, 0),
        "limit": limit,
    }


@router.get("/subscriptions")
async def list_subscriptions(user: CurrentUser, db: Db) -> dict[str, Any]:
    """Every site of the company and whether the caller is subscribed (e-mail to their own
    address for that site's incidents)."""
    async with db.read() as session:
        return {"sites": await alerts_admin.subscriptions(session, user)}


@router.put("/subscriptions/{site_id}")
async def subscribe(site_id: SiteId, user: CurrentUser, db: Db) -> dict[str, Any]:
    async with db.write() as session:
        site = await alerts_admin.subscribe(session, user, site_id, True)
    return {"site_id": str(site.id), "site": site.name, "subscribed": True}


@router.delete("/subscriptions/{site_id}")
async def unsubscribe(site_id: SiteId, user: CurrentUser, db: Db) -> dict[str, Any]:
    async with db.write() as session:
        site = await alerts_admin.subscribe(session, user, site_id, False)
    return {"site_id": str(site.id), "site": site.name, "subscribed": False}


def install_alerts(app: FastAPI) -> None:
    app.include_router(router)
