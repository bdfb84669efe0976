"""Cameras for admins: a display name of their own, and removing one the POD stopped reporting.

``display_name`` is the portal's: the heartbeat keeps updating ``name`` from the POD's config
and never touches it; lists show it when set. A camera is **stopped reporting** when the POD's
last applied camera list did not have it (``missing_since`` set by the heartbeat): only then may
an admin remove it (409 ``camera_reported`` otherwise). Removing deletes the row; a heartbeat
that reports the camera again brings it back as a new row — with the display name it had at
the removal, kept in ``camera_names`` (the heartbeat's insert reads it; migration 0013).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from platebridge.portal.errors import ApiError
from platebridge.portal.models import Camera, CameraName, Pod, User, utcnow
from platebridge.portal.services.changes import record_change
from platebridge.portal.services.tenancy import clean_name


def camera_dict(camera: Camera, pod: Pod) -> dict[str, Any]:
    return {
        "pod_id": pod.pod_id,
        "camera_id": camera.camera_id,
        "name": camera.display_name or camera.name,
        "reported_name": camera.name,
        "display_name": camera.display_name,
        "status": camera.status,
        "reported": camera.missing_since is None,
        "missing_since": camera.missing_since.isoformat() if camera.missing_since else None,
        "updated_at": camera.updated_at.isoformat(),
    }


async def list_cameras(
    session: AsyncSession, company_id: uuid.UUID, pod: Pod | None = None
) -> list[dict[str, Any]]:
    """A company's cameras for operators (decommissioned pods' included, marked by the pod)."""
    stmt = (
        select(Camera, Pod)
        .join(Pod, Pod.id == Camera.pod_id)
        .where(Pod.company_id == company_id)
        .order_by(Pod.pod_id, Camera.camera_id)
    )
    if pod is not None:
        stmt = stmt.where(Pod.id == pod.id)
    return [camera_dict(c, p) for c, p in (await session.execute(stmt)).all()]


async def find_camera(session: AsyncSession, pod: Pod, camera_id: str) -> Camera:
    stmt = select(Camera).where(Camera.pod_id == pod.id, Camera.camera_id == camera_id)
    camera = await session.scalar(stmt)
    if camera is None:
        raise ApiError(404, "not_found", f"camera {camera_id!r} of pod {pod.pod_id!r} not found")
    return camera


def _record(
    session: AsyncSession, actor: User | None, camera: Camera, pod: Pod, action: str, **detail: Any
) -> None:
    record_change(
        session,
        actor=actor,
        company_id=pod.company_id,
        action=f"camera.{action}",
        object_type="camera",
        object_id=f"{pod.pod_id}/{camera.camera_id}",
        detail=detail,
    )


async def rename_camera(
    session: AsyncSession, camera: Camera, pod: Pod, display_name: str | None, actor: User | None
) -> Camera:
    """Set (or with None / blank, clear) the display name."""
    new = clean_name(display_name, "camera") if display_name and display_name.strip() else None
    old, camera.display_name = camera.display_name, new
    _record(session, actor, camera, pod, "rename", **{"from": old, "to": new})
    await session.flush()
    return camera


async def remove_camera(
    session: AsyncSession, camera: Camera, pod: Pod, actor: User | None
) -> None:
    if camera.missing_since is None:
        raise ApiError(
            409,
            "camera_reported",
            f"camera {camera.camera_id!r} is still reported by pod {pod.pod_id!r}: remove it "
            "from the POD's config first",
        )
    _record(session, actor, camera, pod, "remove", name=camera.display_name or camera.name)
    await _keep_display_name(session, camera)
    await session.execute(delete(Camera).where(Camera.id == camera.id))


async def _keep_display_name(session: AsyncSession, camera: Camera) -> None:
    """What the camera comes back with if its POD reports it again: this display name, or
    none (a name kept from an earlier removal is dropped)."""
    kept = delete(CameraName).where(
        CameraName.pod_id == camera.pod_id, CameraName.camera_id == camera.camera_id
    )
    await session.execute(kept)
    if camera.display_name:
        session.add(
            CameraName(
                pod_id=camera.pod_id,
                camera_id=camera.camera_id,
                display_name=camera.display_name,
                removed_at=utcnow(),
            )
        )
        await session.flush()
