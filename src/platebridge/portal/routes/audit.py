"""``GET /api/audit``: the company's stream-access trail, for company admins."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from platebridge.portal.deps import AdminUser, Db
from platebridge.portal.errors import ApiError
from platebridge.portal.models import AuditAction
from platebridge.portal.schemas import AuditListing
from platebridge.portal.scoping import scoped_audit_events
from platebridge.portal.services.audit import DEFAULT_LIMIT, MAX_LIMIT, AuditFilter, list_events

router = APIRouter(prefix="/api", tags=["audit"])


def _aware(value: datetime | None, name: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ApiError(400, "bad_request", f"{name} needs a time zone (e.g. 2026-01-01T00:00:00Z)")
    return value


@router.get("/audit", response_model=AuditListing)
async def audit_events(
    user: AdminUser,
    db: Db,
    pod_id: Annotated[str | None, Query(max_length=64)] = None,
    camera_id: Annotated[str | None, Query(max_length=64)] = None,
    user_filter: Annotated[str | None, Query(alias="user", max_length=320)] = None,
    since: Annotated[datetime | None, Query()] = None,
    until: Annotated[datetime | None, Query()] = None,
    action: Annotated[AuditAction | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> dict[str, Any]:
    flt = AuditFilter(
        pod_id=pod_id,
        camera_id=camera_id,
        user=user_filter,
        since=_aware(since, "since"),
        until=_aware(until, "until"),
        action=action,
        limit=limit,
    )
    async with db.read() as session:
        events = await list_events(session, scoped_audit_events(user), flt)
    return {"events": events}
