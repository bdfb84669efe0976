"""``GET /api/pods`` and ``GET /api/pods/{pod_id}``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from platebridge.portal.deps import CurrentUser, Db, Settings
from platebridge.portal.errors import not_found
from platebridge.portal.scoping import get_pod_for_user
from platebridge.portal.services.listing import list_pods

router = APIRouter(prefix="/api", tags=["pods"])


@router.get("/pods")
async def pods(
    user: CurrentUser,
    db: Db,
    settings: Settings,
    site: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    async with db.read() as session:
        rows = await list_pods(session, user, settings.offline_after, site=site)
    return {"pods": rows}


@router.get("/pods/{pod_id}")
async def pod(
    user: CurrentUser, db: Db, settings: Settings, pod_id: Annotated[str, Path(max_length=64)]
) -> dict[str, Any]:
    async with db.read() as session:
        found = await get_pod_for_user(session, user, pod_id)  # 404 for other companies
        rows = await list_pods(session, user, settings.offline_after, pod_id=found.pod_id)
    if not rows:
        raise not_found(f"pod {pod_id!r}")
    return rows[0]
