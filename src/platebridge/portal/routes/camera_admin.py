"""Cameras for company admins: a display name, and removing one the POD stopped reporting.

``PATCH /api/cameras/{pod_id}/{camera_id}`` ``{"display_name": …}`` (null or "" clears it) and
``DELETE /api/cameras/{pod_id}/{camera_id}`` (409 ``camera_reported`` while the POD reports it).
Admin-only; the camera is looked up through ``scoping`` (another company's is 404).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from platebridge.portal.deps import AdminUser, Db
from platebridge.portal.scoping import get_camera_for_user
from platebridge.portal.services import camera_admin

router = APIRouter(prefix="/api/cameras", tags=["camera admin"])
Slug = Annotated[str, Path(max_length=64)]


class CameraUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    display_name: str | None = Field(
        max_length=200,
        description="the name lists show instead of the POD's (null or empty: the POD's)",
    )


@router.get("/{pod_id}/{camera_id}")
async def camera(user: AdminUser, db: Db, pod_id: Slug, camera_id: Slug) -> dict[str, Any]:
    async with db.read() as session:
        cam, pod = await get_camera_for_user(session, user, pod_id, camera_id)
        return camera_admin.camera_dict(cam, pod)


@router.patch("/{pod_id}/{camera_id}")
async def update_camera(
    body: CameraUpdate, user: AdminUser, db: Db, pod_id: Slug, camera_id: Slug
) -> dict[str, Any]:
    async with db.write() as session:
        cam, pod = await get_camera_for_user(session, user, pod_id, camera_id)
        await camera_admin.rename_camera(session, cam, pod, body.display_name, user)
        return camera_admin.camera_dict(cam, pod)


@router.delete("/{pod_id}/{camera_id}")
async def remove_camera(user: AdminUser, db: Db, pod_id: Slug, camera_id: Slug) -> dict[str, Any]:
    async with db.write() as session:
        cam, pod = await get_camera_for_user(session, user, pod_id, camera_id)
        await camera_admin.remove_camera(session, cam, pod, user)
        return {"deleted": True, "pod_id": pod.pod_id, "camera_id": cam.camera_id}
