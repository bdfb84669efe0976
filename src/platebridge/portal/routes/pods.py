"""``GET /api/pods``, ``GET /api/pods/{pod_id}`` and ``PATCH /api/pods/{pod_id}`` (admins)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from platebridge.portal.db import Database
from platebridge.portal.deps import AdminUser, CurrentUser, Db, Settings
from platebridge.portal.errors import not_found
from platebridge.portal.listing import list_pods
from platebridge.portal.models import StreamMode, User
from platebridge.portal.schemas import PodItem, PodListing
from platebridge.portal.scoping import get_pod_for_user
from platebridge.portal.settings import PortalSettings
from platebridge.portal.streaming.access import streaming_state
from platebridge.portal.tunnel.routes import get_hub

router = APIRouter(prefix="/api", tags=["pods"])


@router.get("/pods", response_model=PodListing)
async def pods(
    request: Request,
    user: CurrentUser,
    db: Db,
    settings: Settings,
    site: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    networks = streaming_state(request).networks
    async with db.read() as session:
        rows = await list_pods(
            session,
            user,
            settings.offline_after,
            site=site,
            networks=networks,
            tunnels=get_hub(request.app).connected,
        )
    return {"pods": rows}


async def _one_pod(
    request: Request, user: User, db: Database, settings: PortalSettings, pod_id: str
) -> dict[str, Any]:
    networks = streaming_state(request).networks
    async with db.read() as session:
        found = await get_pod_for_user(session, user, pod_id)  # 404 for other companies
        rows = await list_pods(
            session,
            user,
            settings.offline_after,
            pod_id=found.pod_id,
            networks=networks,
            tunnels=get_hub(request.app).connected,
        )
    if not rows:
        raise not_found(f"pod {pod_id!r}")
    row: dict[str, Any] = rows[0]
    return row


@router.get("/pods/{pod_id}", response_model=PodItem)
async def pod(
    request: Request,
    user: CurrentUser,
    db: Db,
    settings: Settings,
    pod_id: Annotated[str, Path(max_length=64)],
) -> dict[str, Any]:
    return await _one_pod(request, user, db, settings, pod_id)


class PodUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stream_mode: StreamMode = Field(
        description="How browsers reach the pod's streams: through the portal (proxy), "
        "directly, through the POD's outbound tunnel, or auto (proxy when the pod's address is "
        "allowed and answers, else the tunnel)."
    )


@router.patch("/pods/{pod_id}", response_model=PodItem)
async def update_pod(
    request: Request,
    body: PodUpdate,
    user: AdminUser,
    db: Db,
    settings: Settings,
    pod_id: Annotated[str, Path(max_length=64)],
) -> dict[str, Any]:
    async with db.write() as session:
        found = await get_pod_for_user(session, user, pod_id)  # 404 for other companies
        found.stream_mode = body.stream_mode
    return await _one_pod(request, user, db, settings, pod_id)
