"""Communities and sites for company admins: list, show, create, rename, delete.

``/api/communities[/{community_id}]``, ``/api/sites[/{site_id}]`` and the change trail
``/api/changes``; admin-only, scoped to
the admin's company (another company's row is 404, as one that does not exist). Companies
themselves are the operator's (CLI only). Deleting is refused (409 ``not_empty``) while the
object holds PODs — see ``services.tenancy`` for the rules.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from platebridge.portal.deps import AdminUser, Db
from platebridge.portal.scoping import get_community_for_user, get_site_for_user
from platebridge.portal.services import changes, tenancy

router = APIRouter(prefix="/api", tags=["tenancy"])
Id = Annotated[str, Path(max_length=64, description="the object's id (a UUID)")]
NAME = Field(min_length=1, max_length=200, description="display name, unique in its parent")


class NewCommunity(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = NAME


class NewSite(BaseModel):
    model_config = ConfigDict(extra="forbid")
    community_id: str = Field(max_length=64, description="the community the site belongs to")
    name: str = NAME


class Rename(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = NAME


@router.get("/communities")
async def communities(user: AdminUser, db: Db) -> dict[str, Any]:
    async with db.read() as session:
        return {"communities": await tenancy.list_communities(session, user.company_id)}


@router.post("/communities", status_code=201)
async def create_community(body: NewCommunity, user: AdminUser, db: Db) -> dict[str, Any]:
    async with db.write() as session:
        community = await tenancy.create_community(session, user.company_id, body.name, user)
        return await tenancy.community_dict(session, community)


@router.get("/communities/{community_id}")
async def community(user: AdminUser, db: Db, community_id: Id) -> dict[str, Any]:
    async with db.read() as session:
        found = await get_community_for_user(session, user, community_id)
        return await tenancy.community_dict(session, found)


@router.patch("/communities/{community_id}")
async def rename_community(
    body: Rename, user: AdminUser, db: Db, community_id: Id
) -> dict[str, Any]:
    async with db.write() as session:
        found = await get_community_for_user(session, user, community_id)
        await tenancy.rename_community(session, found, body.name, user)
        return await tenancy.community_dict(session, found)


@router.delete("/communities/{community_id}")
async def delete_community(user: AdminUser, db: Db, community_id: Id) -> dict[str, Any]:
    async with db.write() as session:
        found = await get_community_for_user(session, user, community_id)
        await tenancy.delete_community(session, found, user)
        return {"deleted": True, "community_id": str(found.id), "name": found.name}


@router.get("/sites")
async def sites(user: AdminUser, db: Db) -> dict[str, Any]:
    async with db.read() as session:
        return {"sites": await tenancy.list_sites(session, user.company_id)}


@router.post("/sites", status_code=201)
async def create_site(body: NewSite, user: AdminUser, db: Db) -> dict[str, Any]:
    async with db.write() as session:
        parent = await get_community_for_user(session, user, body.community_id)
        site = await tenancy.create_site(session, parent, body.name, user)
        return await tenancy.site_dict(session, site)


@router.get("/sites/{site_id}")
async def site(user: AdminUser, db: Db, site_id: Id) -> dict[str, Any]:
    async with db.read() as session:
        return await tenancy.site_dict(session, await get_site_for_user(session, user, site_id))


@router.patch("/sites/{site_id}")
async def rename_site(body: Rename, user: AdminUser, db: Db, site_id: Id) -> dict[str, Any]:
    async with db.write() as session:
        found = await get_site_for_user(session, user, site_id)
        await tenancy.rename_site(session, found, body.name, user)
        return await tenancy.site_dict(session, found)


@router.delete("/sites/{site_id}")
async def delete_site(user: AdminUser, db: Db, site_id: Id) -> dict[str, Any]:
    async with db.write() as session:
        found = await get_site_for_user(session, user, site_id)
        await tenancy.delete_site(session, found, user)
        return {"deleted": True, "site_id": str(found.id), "name": found.name}


@router.get("/changes")
async def admin_changes(
    user: AdminUser, db: Db, limit: Annotated[int, Query(ge=1, le=changes.MAX_LIST)] = 200
) -> dict[str, Any]:
    """The company's admin-change trail (who changed what, when), newest first."""
    async with db.read() as session:
        rows = await changes.list_changes(session, user.company_id, limit)
    return {"changes": [changes.change_dict(r) for r in rows]}
