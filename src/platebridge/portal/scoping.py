"""Tenant scoping in ONE place: every user-facing query of pods or cameras starts here.

A user only ever reaches rows whose ``pods.company_id`` is the user's company; anything else
is indistinguishable from "does not exist" (404). What a user may *do* with a camera they can
reach is their role's capability (:data:`ROLE_CAPABILITIES`, :func:`require_capability`),
checked after the tenant lookup so another company's camera stays 404 for every role.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from platebridge.portal.errors import ApiError, not_found
from platebridge.portal.models import AuditEvent, Camera, Community, Pod, Role, Site, User

#: What a role may do with the cameras of its company: ``live`` (watch live), ``footage``
#: (recorded video), ``export`` (download a clip), ``share`` (create and revoke share links).
Capability = Literal["live", "footage", "export", "share"]
ROLE_CAPABILITIES: dict[Role, frozenset[Capability]] = {
    "admin": frozenset({"live", "footage", "export", "share"}),
    "manager": frozenset({"live", "footage", "export", "share"}),
    "viewer": frozenset({"live"}),
}


def can(user: User, capability: Capability) -> bool:
    """True when the user's role has ``capability`` (an unknown role has none)."""
    return capability in ROLE_CAPABILITIES.get(user.role, frozenset())


def require_capability(user: User, capability: Capability) -> None:
    """403 ``forbidden`` unless the user's role has ``capability``."""
    if not can(user, capability):
        raise ApiError(403, "forbidden", f"your role may not use {capability}: ask an admin")


def scoped_pods(user: User) -> Select[Pod, Site]:
    """Pods of the user's company, with their site."""
    return (
        select(Pod, Site)
        .join(Site, Site.id == Pod.site_id)
        .where(Pod.company_id == user.company_id)
    )


def scoped_cameras(user: User) -> Select[Camera, Pod, Site]:
    """Cameras of the user's company, with their pod and site (none of a decommissioned pod)."""
    return (
        select(Camera, Pod, Site)
        .join(Pod, Pod.id == Camera.pod_id)
        .join(Site, Site.id == Pod.site_id)
        .where(Pod.company_id == user.company_id, Pod.decommissioned_at.is_(None))
    )


def scoped_camera_pods(user: User) -> Select[Pod, Site]:
    """The pods whose cameras :func:`scoped_cameras` shows (the listings page by these pods)."""
    return company_camera_pods(user.company_id)


def company_camera_pods(company_id: Any) -> Select[Pod, Site]:
    """:func:`scoped_camera_pods` of a company id, or of a bound parameter that stands for the
    user's company (the camera listing builds its statement once and binds it per request)."""
    return (
        select(Pod, Site)
        .join(Site, Site.id == Pod.site_id)
        .where(Pod.company_id == company_id, Pod.decommissioned_at.is_(None))
    )


def scoped_audit_events(user: User) -> Select[AuditEvent]:
    """Audit rows of the user's company (routes add the admin check)."""
    return company_audit_events(user.company_id)


def company_audit_events(company_id: uuid.UUID) -> Select[AuditEvent]:
    """Audit rows of one company, for operator tools that act for a company (the CLI)."""
    return select(AuditEvent).where(AuditEvent.company_id == company_id)


async def get_pod_for_user(session: AsyncSession, user: User, pod_id: str) -> Pod:
    """The user's pod with wire id ``pod_id``, or 404 (also for other companies' pods)."""
    pod = (
        await session.execute(
            select(Pod).where(Pod.company_id == user.company_id, Pod.pod_id == pod_id)
        )
    ).scalar_one_or_none()
    if pod is None:
        raise not_found(f"pod {pod_id!r}")
    return pod


async def get_camera_for_user(
    session: AsyncSession, user: User, pod_id: str, camera_id: str
) -> tuple[Camera, Pod]:
    """The user's camera (pod, camera_id), or 404."""
    row = (
        await session.execute(
            select(Camera, Pod)
            .join(Pod, Pod.id == Camera.pod_id)
            .where(
                Pod.company_id == user.company_id,
                Pod.pod_id == pod_id,
                Camera.camera_id == camera_id,
                Pod.decommissioned_at.is_(None),  # a decommissioned pod's cameras: gone
            )
        )
    ).one_or_none()
    if row is None:
        raise not_found(f"camera {camera_id!r} of pod {pod_id!r}")
    return row[0], row[1]


def scoped_sites(user: User) -> Select[Site]:
    """Sites of the user's company (for the admin forms of the PODs page)."""
    return select(Site).where(Site.company_id == user.company_id)


async def get_site_for_user(session: AsyncSession, user: User, site_id: str) -> Site:
    """The user's site by id, or 404 (also for other companies' sites and malformed ids)."""
    try:
        wanted = uuid.UUID(site_id)
    except ValueError:
        raise not_found("site") from None
    site = (await session.execute(scoped_sites(user).where(Site.id == wanted))).scalar_one_or_none()
    if site is None:
        raise not_found("site")
    return site


def scoped_communities(user: User) -> Select[Community]:
    """Communities of the user's company (admin pages and the lifecycle API)."""
    return select(Community).where(Community.company_id == user.company_id)


async def get_community_for_user(session: AsyncSession, user: User, community_id: str) -> Community:
    """The user's community by id, or 404 (also for other companies' and malformed ids)."""
    try:
        wanted = uuid.UUID(community_id)
    except ValueError:
        raise not_found("community") from None
    stmt = scoped_communities(user).where(Community.id == wanted)
    found = (await session.execute(stmt)).scalar_one_or_none()
    if found is None:
        raise not_found("community")
    return found
