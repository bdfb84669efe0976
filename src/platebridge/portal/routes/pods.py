"""``GET /api/pods`` (paginated as ``GET /api/cameras``), ``GET /api/pods/{pod_id}`` and
``PATCH /api/pods/{pod_id}`` (admins)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from platebridge.portal.cursor import next_cursor, read_cursor
from platebridge.portal.db import Database
from platebridge.portal.deps import (
    AdminUser,
    CurrentUser,
    CursorKey,
    Db,
    Hub,
    Settings,
    Streaming,
)
from platebridge.portal.errors import not_found
from platebridge.portal.listing import list_pods, pod_page
from platebridge.portal.listing_query import DEFAULT_LIMIT, Filters
from platebridge.portal.models import StreamMode, User
from platebridge.portal.routes.cameras import Cursor, Limit, TextQuery, clean_query
from platebridge.portal.schemas import PodItem, PodListing
from platebridge.portal.scoping import get_pod_for_user
from platebridge.portal.settings import PortalSettings
from platebridge.portal.streaming.state import StreamingState
from platebridge.portal.tunnel.hub import TunnelHub

router = APIRouter(prefix="/api", tags=["pods"])


@router.get("/pods", response_model=PodListing)
async def pods(
    user: CurrentUser,
    db: Db,
    settings: Settings,
    state: Streaming,
    hub: Hub,
    key: CursorKey,
    site: Annotated[str | None, Query(max_length=200, description="Site name or id.")] = None,
    community: Annotated[
        str | None, Query(max_length=200, description="Community name or id.")
    ] = None,
    status: Annotated[
        Literal["online", "offline", "error"] | None,
        Query(description="The POD's effective status (offline after the heartbeat limit)."),
    ] = None,
    q: TextQuery = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> dict[str, Any]:
    filters = Filters(site=site, community=community, state=status, q=clean_query(q))
    scope = filters.scope("pods", user)
    after, total = read_cursor(key, scope, cursor, 2)
    async with db.read() as session:
        page = await pod_page(
            session,
            user,
            settings.offline_after,
            filters,
            after=after,
            total=total,
            limit=limit,
            networks=state.networks,
            tunnels=hub.connected,
        )
    return {
        "pods": page.items,
        "next_cursor": next_cursor(key, scope, page.next_key, page.total),
        "total": page.total,
        "limit": limit,
    }


async def _one_pod(
    user: User,
    db: Database,
    settings: PortalSettings,
    state: StreamingState,
    hub: TunnelHub,
    pod_id: str,
) -> dict[str, Any]:
    async with db.read() as session:
        found = await get_pod_for_user(session, user, pod_id)  # 404 for other companies
        rows = await list_pods(
            session,
            user,
            settings.offline_after,
            pod_id=found.pod_id,
            networks=state.networks,
            tunnels=hub.connected,
        )
    if not rows:
        raise not_found(f"pod {pod_id!r}")
    row: dict[str, Any] = rows[0]
    return row


@router.get("/pods/{pod_id}", response_model=PodItem)
async def pod(
    user: CurrentUser,
    db: Db,
    settings: Settings,
    state: Streaming,
    hub: Hub,
    pod_id: Annotated[str, Path(max_length=64)],
) -> dict[str, Any]:
    return await _one_pod(user, db, settings, state, hub, pod_id)


class PodUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stream_mode: StreamMode = Field(
        description="How browsers reach the pod's streams: through the portal (proxy), "
        "directly, through the POD's outbound tunnel, or auto (proxy when the pod's address is "
        "allowed and answers, else the tunnel)."
    )


@router.patch("/pods/{pod_id}", response_model=PodItem)
async def update_pod(
    body: PodUpdate,
    user: AdminUser,
    db: Db,
    settings: Settings,
    state: Streaming,
    hub: Hub,
    pod_id: Annotated[str, Path(max_length=64)],
) -> dict[str, Any]:
    async with db.write() as session:
        found = await get_pod_for_user(session, user, pod_id)  # 404 for other companies
        found.stream_mode = body.stream_mode
    return await _one_pod(user, db, settings, state, hub, pod_id)
