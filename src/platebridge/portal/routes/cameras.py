"""``GET /api/cameras`` (the spec's "Portal Queries Cameras")."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from platebridge.portal.deps import CurrentUser, Db, Settings
from platebridge.portal.services.listing import list_cameras

router = APIRouter(prefix="/api", tags=["cameras"])


@router.get("/cameras")
async def cameras(
    user: CurrentUser,
    db: Db,
    settings: Settings,
    status: Annotated[Literal["active", "inactive", "error"] | None, Query()] = None,
    pod_id: Annotated[str | None, Query(max_length=64)] = None,
    site: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    async with db.read() as session:
        rows = await list_cameras(
            session, user, settings.offline_after, status=status, pod_id=pod_id, site=site
        )
    return {"cameras": rows}
