"""``/audit``: the company's stream-access trail for admins (``services.audit``), filterable,
and next to it the admin-change trail (``services.changes``: who changed what, when)."""

from __future__ import annotations

from typing import Annotated, get_args

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from platebridge.portal.deps import AdminUser, Db, page
from platebridge.portal.pages.render import render
from platebridge.portal.scoping import scoped_audit_events
from platebridge.portal.services.audit import Action, AuditFilter, list_events
from platebridge.portal.services.changes import change_dict, list_changes

router = APIRouter(include_in_schema=False)
ACTIONS: dict[str, Action] = {action: action for action in get_args(Action)}


@router.get("/audit")
@page
async def audit_page(
    request: Request,
    user: AdminUser,
    db: Db,
    pod_id: Annotated[str, Query(max_length=64)] = "",
    camera_id: Annotated[str, Query(max_length=64)] = "",
    user_filter: Annotated[str, Query(alias="user", max_length=320)] = "",
    action: Annotated[str, Query(max_length=32)] = "",
) -> Response:
    flt = AuditFilter(
        pod_id=pod_id or None,
        camera_id=camera_id or None,
        user=user_filter or None,
        action=ACTIONS.get(action),
    )
    async with db.read() as session:
        events = await list_events(session, scoped_audit_events(user), flt)
        trail = [change_dict(row) for row in await list_changes(session, user.company_id)]
    filters = {"pod_id": pod_id, "camera_id": camera_id, "user": user_filter, "action": action}
    return render(request, "audit.html", events=events, filters=filters, changes=trail)
