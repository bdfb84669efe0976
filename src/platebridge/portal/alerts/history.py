"""What a company sees of its alerts: incidents (open and resolved, newest first), the delivery
log (admins), and the open incidents of the cameras a page lists.

Incidents in state ``pending`` are never listed: the condition was seen but not yet for long
enough, nothing was sent, and most end without becoming an alert (docs/alerts.md). Lists are
keyset pages (``cursor.py``): the sort key of the last row, signed with the listing's scope.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from platebridge.portal.alerts.enqueue import TITLES
from platebridge.portal.alerts.models import (
    AlertDelivery,
    AlertEndpoint,
    AlertIncident,
    DeliveryState,
    IncidentKind,
)
from platebridge.portal.cursor import invalid_cursor
from platebridge.portal.models import Camera, Pod, Site, User

#: The states a listing shows (``pending`` is not an alert yet).
ListedState = Literal["open", "resolved"]
LISTED: tuple[ListedState, ...] = ("open", "resolved")
#: Pod-level kinds: a card of each of the pod's cameras shows them.
POD_KINDS = frozenset({"pod_offline", "disk_low", "tunnel_down"})


@dataclass(slots=True)
class Listing:
    items: list[dict[str, Any]]
    next_key: tuple[str, str] | None


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _after(column: Any, id_column: Any, after: tuple[str, ...] | None) -> Any:
    """Rows after ``(time, id)`` in (time desc, id desc) order; 400 for a key that is no key."""
    if after is None:
        return None
    try:
        at, last = datetime.fromisoformat(after[0]), uuid.UUID(after[1])
    except ValueError:
        raise invalid_cursor() from None
    if at.tzinfo is None:
        raise invalid_cursor()
    return or_(column < at, and_(column == at, id_column < last))


@dataclass(frozen=True, slots=True)
class IncidentFilters:
    state: ListedState | None = None
    kind: IncidentKind | None = None
    site: str | None = None  # name or id
    pod_id: str | None = None  # wire id
    camera_id: str | None = None

    def scope(self, user: User) -> str:
        return "|".join(
            [
                "alert-incidents",
                str(user.company_id),
                *(f"{k}={getattr(self, k) or ''}" for k in self.__slots__),
            ]
        )


def incident_item(
    incident: AlertIncident, pod: Pod, site: Site, camera_name: str | None
) -> dict[str, Any]:
    subject = camera_name or incident.camera_id or pod.name
    return {
        "id": str(incident.id),
        "kind": incident.kind,
        "title": TITLES.get(incident.kind, incident.kind),
        "subject": subject,
        "state": incident.state,
        "pod_id": pod.pod_id,
        "pod_name": pod.name,
        "camera_id": incident.camera_id or None,
        "camera_name": camera_name,
        "site": site.name,
        "site_id": str(site.id),
        "detail": incident.detail,
        "count": incident.count,
        "first_seen": _iso(incident.first_seen),
        "opened_at": _iso(incident.opened_at),
        "last_seen": _iso(incident.last_seen),
        "resolved_at": _iso(incident.resolved_at),
    }


def _incident_query(company_id: uuid.UUID) -> Any:
    name = Camera.display_name
    return (
        select(AlertIncident, Pod, Site, name, Camera.name)
        .join(Pod, Pod.id == AlertIncident.pod_id)
        .join(Site, Site.id == Pod.site_id)
        .outerjoin(
            Camera, and_(Camera.pod_id == Pod.id, Camera.camera_id == AlertIncident.camera_id)
        )
        .where(AlertIncident.company_id == company_id, Pod.company_id == company_id)
    )


async def incident_page(
    session: AsyncSession,
    user: User,
    filters: IncidentFilters,
    *,
    after: tuple[str, ...] | None,
    limit: int,
) -> Listing:
    """The company's incidents, newest onset first (``first_seen``, then id)."""
    stmt = _incident_query(user.company_id).where(
        AlertIncident.state.in_([filters.state] if filters.state else LISTED)
    )
    if filters.kind:
        stmt = stmt.where(AlertIncident.kind == filters.kind)
    if filters.pod_id:
        stmt = stmt.where(Pod.pod_id == filters.pod_id)
    if filters.camera_id:
        stmt = stmt.where(AlertIncident.camera_id == filters.camera_id)
    if filters.site:
        try:
            stmt = stmt.where(Site.id == uuid.UUID(filters.site))
        except ValueError:
            stmt = stmt.where(Site.name == filters.site)
    keyset = _after(AlertIncident.first_seen, AlertIncident.id, after)
    if keyset is not None:
        stmt = stmt.where(keyset)
    stmt = stmt.order_by(AlertIncident.first_seen.desc(), AlertIncident.id.desc()).limit(limit + 1)
    rows = list((await session.execute(stmt)).all())
    more = len(rows) > limit
    rows = rows[:limit]
    items = [
        incident_item(incident, pod, site, display or name)
        for incident, pod, site, display, name in rows
    ]
    last = rows[-1][0] if rows else None
    next_key = (last.first_seen.isoformat(), str(last.id)) if more and last else None
    return Listing(items, next_key)


async def attach_open_incidents(
    session: AsyncSession, company_id: uuid.UUID, cameras: list[dict[str, Any]]
) -> None:
    """Add ``incidents`` (open ones: the camera's and its pod's) to each listed camera item, in
    one query over the listed cameras' pods."""
    for cam in cameras:
        cam["incidents"] = []
    pod_ids = sorted({cam["pod_id"] for cam in cameras})
    if not pod_ids:
        return
    stmt = (
        select(AlertIncident, Pod.pod_id)
        .join(Pod, Pod.id == AlertIncident.pod_id)
        .where(
            AlertIncident.company_id == company_id,
            Pod.company_id == company_id,
            Pod.pod_id.in_(pod_ids),
            AlertIncident.state == "open",
        )
        .order_by(AlertIncident.first_seen)
    )
    found: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for incident, wire_pod in (await session.execute(stmt)).all():
        item = {
            "id": str(incident.id),
            "kind": incident.kind,
            "title": TITLES.get(incident.kind, incident.kind),
            "first_seen": _iso(incident.first_seen),
            "count": incident.count,
            "pod_level": incident.kind in POD_KINDS or not incident.camera_id,
        }
        found.setdefault((wire_pod, incident.camera_id), []).append(item)
    for cam in cameras:
        cam["incidents"] = found.get((cam["pod_id"], ""), []) + found.get(
            (cam["pod_id"], cam["id"]), []
        )


# --- deliveries ------------------------------------------------------------------------------


def delivery_item(delivery: AlertDelivery, endpoint_name: str | None) -> dict[str, Any]:
    """A row of the delivery log: never the payload (a retry's bytes) nor a lease."""
    return {
        "id": str(delivery.id),
        "event": delivery.event,
        "channel": delivery.channel,
        "target": delivery.target,
        "state": delivery.state,
        "attempts": delivery.attempts,
        "last_status_code": delivery.last_status_code,
        "last_error": delivery.last_error,
        "created_at": _iso(delivery.created_at),
        "delivered_at": _iso(delivery.delivered_at),
        "next_attempt_at": _iso(delivery.next_attempt_at) if delivery.state == "pending" else None,
        "endpoint_id": None if delivery.endpoint_id is None else str(delivery.endpoint_id),
        "endpoint": endpoint_name,
        "incident_id": None if delivery.incident_id is None else str(delivery.incident_id),
    }


def delivery_scope(user: User, state: str | None, endpoint: str | None) -> str:
    return f"alert-deliveries|{user.company_id}|state={state or ''}|endpoint={endpoint or ''}"


async def delivery_page(
    session: AsyncSession,
    user: User,
    *,
    state: DeliveryState | None,
    endpoint: str | None,
    after: tuple[str, ...] | None,
    limit: int,
) -> Listing:
    """The company's deliveries, newest first. ``endpoint``: an endpoint id (another company's
    or a malformed one matches nothing)."""
    stmt = (
        select(AlertDelivery, AlertEndpoint.name)
        .outerjoin(AlertEndpoint, AlertEndpoint.id == AlertDelivery.endpoint_id)
        .where(AlertDelivery.company_id == user.company_id)
    )
    if state:
        stmt = stmt.where(AlertDelivery.state == state)
    if endpoint:
        try:
            stmt = stmt.where(AlertDelivery.endpoint_id == uuid.UUID(endpoint))
        except ValueError:
            return Listing([], None)
    keyset = _after(AlertDelivery.created_at, AlertDelivery.id, after)
    if keyset is not None:
        stmt = stmt.where(keyset)
    stmt = stmt.order_by(AlertDelivery.created_at.desc(), AlertDelivery.id.desc()).limit(limit + 1)
    rows = list((await session.execute(stmt)).all())
    more = len(rows) > limit
    rows = rows[:limit]
    items = [delivery_item(d, name) for d, name in rows]
    last = rows[-1][0] if rows else None
    next_key = (last.created_at.isoformat(), str(last.id)) if more and last else None
    return Listing(items, next_key)
