"""Companies, communities and sites: list, show, rename, delete (and create, with its record).

Callers resolve the object first — the API and pages through ``scoping`` (another company's
row is 404), the CLI through ``admin.resolve`` — and pass it in with the acting admin (None:
the CLI operator). Every change writes its :func:`changes.record_change` row in the same
transaction. Rules:

* a **site** is deleted only while it holds no POD (decommissioned ones count: move or delete
  them first); its enrollment keys go with it;
* a **community** is deleted only while none of its sites holds a POD; its empty sites go
  with it (each recorded);
* a **company** (operators, CLI only) is deleted only while it holds no POD; its users,
  communities, sites and trails go with it.

Refusals are :class:`ApiError` (409 ``not_empty`` / ``name_taken``), the same on every surface.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from platebridge.portal.errors import ApiError
from platebridge.portal.models import ApiKey, Community, Company, Pod, Site, User
from platebridge.portal.services import admin
from platebridge.portal.services.changes import record_change


def _taken(what: str, name: str, where: str) -> ApiError:
    return ApiError(409, "name_taken", f"{what} {name!r} already exists in this {where}")


def clean_name(value: str, what: str) -> str:
    try:
        return admin._name(value, what)
    except admin.AdminError as exc:
        raise ApiError(422, "validation_error", str(exc)) from None


async def _pods_in(session: AsyncSession, *where: Any) -> int:
    return int(await session.scalar(select(func.count()).select_from(Pod).where(*where)) or 0)


# --- views -----------------------------------------------------------------------------------


async def company_dict(session: AsyncSession, company: Company) -> dict[str, Any]:
    def count(model: Any) -> Any:
        return select(func.count()).select_from(model).where(model.company_id == company.id)

    return {
        "company_id": str(company.id),
        "name": company.name,
        "created_at": company.created_at.isoformat(),
        "communities": int(await session.scalar(count(Community)) or 0),
        "sites": int(await session.scalar(count(Site)) or 0),
        "pods": int(await session.scalar(count(Pod)) or 0),
        "users": int(await session.scalar(count(User)) or 0),
    }


async def list_companies(session: AsyncSession) -> list[dict[str, Any]]:
    rows = (await session.scalars(select(Company).order_by(Company.name))).all()
    return [await company_dict(session, c) for c in rows]


def _site_dict(site: Site, community_name: str, pods: int) -> dict[str, Any]:
    return {
        "site_id": str(site.id),
        "community_id": str(site.community_id),
        "community": community_name,
        "company_id": str(site.company_id),
        "name": site.name,
        "created_at": site.created_at.isoformat(),
        "pods": pods,
    }


async def list_sites(
    session: AsyncSession, company_id: uuid.UUID, community_id: uuid.UUID | None = None
) -> list[dict[str, Any]]:
    pods = (
        select(Pod.site_id, func.count().label("n"))
        .where(Pod.company_id == company_id)
        .group_by(Pod.site_id)
        .subquery()
    )
    stmt = (
        select(Site, Community.name, func.coalesce(pods.c.n, 0))
        .join(Community, Community.id == Site.community_id)
        .outerjoin(pods, pods.c.site_id == Site.id)
        .where(Site.company_id == company_id)
        .order_by(Community.name, Site.name)
    )
    if community_id is not None:
        stmt = stmt.where(Site.community_id == community_id)
    return [_site_dict(s, cname, int(n)) for s, cname, n in (await session.execute(stmt)).all()]


async def site_dict(session: AsyncSession, site: Site) -> dict[str, Any]:
    community = await session.get(Community, site.community_id)
    pods = await _pods_in(session, Pod.site_id == site.id)
    return _site_dict(site, community.name if community else "", pods)


async def community_dict(session: AsyncSession, community: Community) -> dict[str, Any]:
    sites = await list_sites(session, community.company_id, community.id)
    return {
        "community_id": str(community.id),
        "company_id": str(community.company_id),
        "name": community.name,
        "created_at": community.created_at.isoformat(),
        "sites": sites,
        "pods": sum(s["pods"] for s in sites),
    }


async def list_communities(session: AsyncSession, company_id: uuid.UUID) -> list[dict[str, Any]]:
    stmt = select(Community).where(Community.company_id == company_id).order_by(Community.name)
    return [await community_dict(session, c) for c in (await session.scalars(stmt)).all()]


# --- changes ---------------------------------------------------------------------------------


async def create_company(session: AsyncSession, name: str) -> Company:
    """Operators only (the CLI): no admin of any company can create one."""
    name = clean_name(name, "company")
    if await session.scalar(select(Company.id).where(Company.name == name)):
        raise ApiError(409, "name_taken", f"company {name!r} already exists")
    company = await admin.create_company(session, name)
    record_change(
        session,
        actor=None,
        company_id=company.id,
        action="company.create",
        object_type="company",
        object_id=str(company.id),
        detail={"name": company.name},
    )
    return company


async def rename_company(session: AsyncSession, company: Company, name: str) -> Company:
    name = clean_name(name, "company")
    other = select(Company.id).where(Company.name == name, Company.id != company.id)
    if await session.scalar(other):
        raise ApiError(409, "name_taken", f"company {name!r} already exists")
    old, company.name = company.name, name
    record_change(
        session,
        actor=None,
        company_id=company.id,
        action="company.rename",
        object_type="company",
        object_id=str(company.id),
        detail={"from": old, "to": name},
    )
    await session.flush()
    return company


async def delete_company(session: AsyncSession, company: Company) -> None:
    pods = await _pods_in(session, Pod.company_id == company.id)
    if pods:
        raise ApiError(
            409,
            "not_empty",
            f"company {company.name!r} still holds {pods} POD(s): decommission and delete them "
            "first",
        )
    # The company's own trail goes with it (cascade): the operator-level record stays.
    record_change(
        session,
        actor=None,
        company_id=None,
        action="company.delete",
        object_type="company",
        object_id=str(company.id),
        detail={"name": company.name},
    )
    await session.execute(delete(Company).where(Company.id == company.id))


async def create_community(
    session: AsyncSession, company_id: uuid.UUID, name: str, actor: User | None
) -> Community:
    name = clean_name(name, "community")
    exists = select(Community.id).where(Community.company_id == company_id, Community.name == name)
    if await session.scalar(exists):
        raise _taken("community", name, "company")
    community = await admin.create_community(session, str(company_id), name)
    record_change(
        session,
        actor=actor,
        company_id=company_id,
        action="community.create",
        object_type="community",
        object_id=str(community.id),
        detail={"name": name},
    )
    return community


async def rename_community(
    session: AsyncSession, community: Community, name: str, actor: User | None
) -> Community:
    name = clean_name(name, "community")
    other = select(Community.id).where(
        Community.company_id == community.company_id,
        Community.name == name,
        Community.id != community.id,
    )
    if await session.scalar(other):
        raise _taken("community", name, "company")
    old, community.name = community.name, name
    record_change(
        session,
        actor=actor,
        company_id=community.company_id,
        action="community.rename",
        object_type="community",
        object_id=str(community.id),
        detail={"from": old, "to": name},
    )
    await session.flush()
    return community


async def delete_community(session: AsyncSession, community: Community, actor: User | None) -> None:
    site_ids = select(Site.id).where(Site.community_id == community.id)
    pods = await _pods_in(session, Pod.site_id.in_(site_ids))
    if pods:
        raise ApiError(
            409,
            "not_empty",
            f"community {community.name!r} still holds {pods} POD(s) in its sites: move or "
            "delete them first",
        )
    for site in (
        await session.scalars(select(Site).where(Site.community_id == community.id))
    ).all():
        await delete_site(session, site, actor)
    record_change(
        session,
        actor=actor,
        company_id=community.company_id,
        action="community.delete",
        object_type="community",
        object_id=str(community.id),
        detail={"name": community.name},
    )
    await session.execute(delete(Community).where(Community.id == community.id))


async def create_site(
    session: AsyncSession, community: Community, name: str, actor: User | None
) -> Site:
    name = clean_name(name, "site")
    exists = select(Site.id).where(Site.community_id == community.id, Site.name == name)
    if await session.scalar(exists):
        raise _taken("site", name, "community")
    site = await admin.create_site(session, str(community.id), name)
    record_change(
        session,
        actor=actor,
        company_id=community.company_id,
        action="site.create",
        object_type="site",
        object_id=str(site.id),
        detail={"name": name, "community": community.name},
    )
    return site


async def rename_site(session: AsyncSession, site: Site, name: str, actor: User | None) -> Site:
    name = clean_name(name, "site")
    other = select(Site.id).where(
        Site.community_id == site.community_id, Site.name == name, Site.id != site.id
    )
    if await session.scalar(other):
        raise _taken("site", name, "community")
    old, site.name = site.name, name
    record_change(
        session,
        actor=actor,
        company_id=site.company_id,
        action="site.rename",
        object_type="site",
        object_id=str(site.id),
        detail={"from": old, "to": name},
    )
    await session.flush()
    return site


async def delete_site(session: AsyncSession, site: Site, actor: User | None) -> None:
    pods = await _pods_in(session, Pod.site_id == site.id)
    if pods:
        raise ApiError(
            409,
            "not_empty",
            f"site {site.name!r} still holds {pods} POD(s): move them to another site or "
            "decommission and delete them first",
        )
    record_change(
        session,
        actor=actor,
        company_id=site.company_id,
        action="site.delete",
        object_type="site",
        object_id=str(site.id),
        detail={"name": site.name},
    )
    await session.execute(delete(ApiKey).where(ApiKey.site_id == site.id))
    await session.execute(delete(Site).where(Site.id == site.id))


def record_enrollment_key(
    session: AsyncSession, site: Site, key_id: uuid.UUID, actor: User | None
) -> None:
    """The trail row of a new enrollment key (its id only, never the key)."""
    record_change(
        session,
        actor=actor,
        company_id=site.company_id,
        action="site.enrollment_key",
        object_type="site",
        object_id=str(site.id),
        detail={"key_id": str(key_id), "site": site.name},
    )
