"""A POD's lifecycle: create, rename, move, decommission, re-enable, delete; key rotation.

Callers resolve the pod (and a target site) first — the API and pages through ``scoping``
(another company's pod or site is 404), the CLI through ``admin.find_pod`` — and pass the
acting admin (None: the CLI operator). Each change writes one ``record_change`` row; keys and
secrets are never in it ("key rotated").

**Decommission** revokes every key of the pod, replaces its stream secret by a random value
nobody holds (tokens signed with the old one fail), forgets its last heartbeat (it is offline
at once) and sets ``decommissioned_at``: its heartbeat and enroll are 403
``pod_decommissioned``, its cameras leave every list and stream route (``scoping``), and the
caller closes its tunnel if its process holds it (``routes.pod_admin.close_tunnel``; any
other portal process holding it closes it at its key re-check, ``TunnelHub.recheck_keys``,
so a CLI decommission ends it too). **Re-enable** clears the mark
and issues a new key and stream secret (shown once); the cameras come back with the POD's next
heartbeat.
**Delete** is only for a decommissioned pod.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from platebridge.portal.errors import ApiError
from platebridge.portal.models import ApiKey, Camera, Pod, Site, StreamMode, User, utcnow
from platebridge.portal.security import new_stream_secret
from platebridge.portal.services import admin
from platebridge.portal.services.changes import record_change
from platebridge.portal.services.tenancy import clean_name


@dataclass(frozen=True, slots=True)
class Credentials:
    """A new API key and stream secret: shown once, never stored in plain text elsewhere."""

    pod: Pod
    api_key: str
    stream_token_secret: str


def _record(
    session: AsyncSession, actor: User | None, pod: Pod, action: str, **detail: Any
) -> None:
    record_change(
        session,
        actor=actor,
        company_id=pod.company_id,
        action=f"pod.{action}",
        object_type="pod",
        object_id=pod.pod_id,
        detail=detail,
    )


async def pod_dict(session: AsyncSession, pod: Pod) -> dict[str, Any]:
    site = await session.get(Site, pod.site_id)
    cameras = await session.scalar(
        select(func.count()).select_from(Camera).where(Camera.pod_id == pod.id)
    )
    keys = await session.scalar(
        select(func.count())
        .select_from(ApiKey)
        .where(ApiKey.pod_id == pod.id, ApiKey.revoked_at.is_(None))
    )
    return {
        "pod_id": pod.pod_id,
        "pod_uuid": str(pod.id),
        "name": pod.name,
        "company_id": str(pod.company_id),
        "site_id": str(pod.site_id),
        "site": site.name if site else "",
        "stream_mode": pod.stream_mode,
        "reported_status": pod.status,
        "last_heartbeat": pod.last_heartbeat.isoformat() if pod.last_heartbeat else None,
        "decommissioned": pod.decommissioned_at is not None,
        "decommissioned_at": pod.decommissioned_at.isoformat() if pod.decommissioned_at else None,
        "cameras": int(cameras or 0),
        "active_keys": int(keys or 0),
        "created_at": pod.created_at.isoformat(),
    }


async def list_pods(
    session: AsyncSession, company_id: uuid.UUID, site_id: uuid.UUID | None = None
) -> list[dict[str, Any]]:
    stmt = select(Pod).where(Pod.company_id == company_id).order_by(Pod.pod_id)
    if site_id is not None:
        stmt = stmt.where(Pod.site_id == site_id)
    return [await pod_dict(session, p) for p in (await session.scalars(stmt)).all()]


def _live(pod: Pod) -> None:
    if pod.decommissioned_at is not None:
        raise ApiError(
            409, "pod_decommissioned", f"pod {pod.pod_id!r} is decommissioned: re-enable it first"
        )


async def create_pod(
    session: AsyncSession, site: Site, pod_id: str, name: str | None, actor: User | None
) -> admin.CreatedPod:
    exists = select(Pod.id).where(Pod.company_id == site.company_id, Pod.pod_id == pod_id)
    if await session.scalar(exists):
        raise ApiError(409, "name_taken", f"pod {pod_id!r} already exists in this company")
    try:
        created = await admin.create_pod(session, str(site.id), pod_id, name)
    except admin.AdminError as exc:
        raise ApiError(422, "validation_error", str(exc)) from None
    _record(session, actor, created.pod, "create", name=created.pod.name, site=site.name)
    return created


async def rename_pod(session: AsyncSession, pod: Pod, name: str, actor: User | None) -> Pod:
    name = clean_name(name, "pod")
    old, pod.name = pod.name, name
    _record(session, actor, pod, "rename", **{"from": old, "to": name})
    await session.flush()
    return pod


async def move_pod(
    session: AsyncSession, pod: Pod, site: Site, actor: User | None
) -> tuple[Pod, str | None]:
    """Move to ``site`` (of the same company: anything else is 404, as if it did not exist).
    Returns a note when the POD heartbeats with its old site's enrollment key (no pod key):
    that key is refused for the new site, so the POD needs a pod key (rotate-key)."""
    if site.company_id != pod.company_id:
        raise ApiError(404, "not_found", "site not found")
    note = None
    if site.id != pod.site_id:
        old = await session.get(Site, pod.site_id)
        keys = select(func.count()).where(ApiKey.pod_id == pod.id, ApiKey.revoked_at.is_(None))
        if not await session.scalar(keys.select_from(ApiKey)) and pod.decommissioned_at is None:
            note = (
                "this POD has no pod key (it heartbeats with a site enrollment key, which "
                "the new site refuses): rotate its key and put the new key into its config"
            )
        pod.site_id = site.id
        _record(session, actor, pod, "move", **{"from": old.name if old else "", "to": site.name})
        await session.flush()
    return pod, note


async def set_stream_mode(
    session: AsyncSession, pod: Pod, mode: StreamMode, actor: User | None
) -> Pod:
    old, pod.stream_mode = pod.stream_mode, mode
    _record(session, actor, pod, "set_mode", **{"from": old, "to": mode})
    return pod


async def rotate_key(session: AsyncSession, pod: Pod, actor: User | None) -> admin.IssuedKey:
    _live(pod)
    issued = await admin.rotate_pod_key(session, pod)
    _record(session, actor, pod, "rotate_key", key_id=str(issued.key.id))
    return issued


async def rotate_secret(session: AsyncSession, pod: Pod, actor: User | None) -> str:
    _live(pod)
    secret = await admin.rotate_pod_stream_secret(session, pod)
    _record(session, actor, pod, "rotate_secret")
    return secret


async def _revoke_keys(session: AsyncSession, pod: Pod) -> None:
    await session.execute(
        update(ApiKey)
        .where(ApiKey.pod_id == pod.id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )


async def decommission(session: AsyncSession, pod: Pod, actor: User | None) -> Pod:
    if pod.decommissioned_at is not None:
        raise ApiError(409, "pod_decommissioned", f"pod {pod.pod_id!r} is decommissioned already")
    await _revoke_keys(session, pod)
    pod.stream_token_secret = new_stream_secret()  # nobody holds it: old tokens fail
    pod.decommissioned_at = utcnow()
    pod.last_heartbeat = None  # offline at once
    pod.heartbeat_digest = None  # no fast path for whatever key might remain
    pod.status = "offline"
    _record(session, actor, pod, "decommission", name=pod.name)
    await session.flush()
    return pod


async def reenable(session: AsyncSession, pod: Pod, actor: User | None) -> Credentials:
    if pod.decommissioned_at is None:
        raise ApiError(409, "pod_not_decommissioned", f"pod {pod.pod_id!r} is not decommissioned")
    await _revoke_keys(session, pod)
    issued = await admin.rotate_pod_key(session, pod)
    secret = await admin.rotate_pod_stream_secret(session, pod)
    pod.decommissioned_at = None
    _record(session, actor, pod, "reenable", key_id=str(issued.key.id))
    await session.flush()
    return Credentials(pod=pod, api_key=issued.api_key, stream_token_secret=secret)


async def delete_pod(session: AsyncSession, pod: Pod, actor: User | None) -> None:
    if pod.decommissioned_at is None:
        raise ApiError(
            409,
            "pod_not_decommissioned",
            f"pod {pod.pod_id!r} is in service: decommission it before deleting it",
        )
    _record(session, actor, pod, "delete", name=pod.name)
    await session.execute(delete(Pod).where(Pod.id == pod.id))
