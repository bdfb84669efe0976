"""``company``, ``community`` and ``site`` commands (companies: operators only, CLI only).

Every change is recorded in the company's change trail with the actor ``operator``.
"""

from __future__ import annotations

import argparse
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from platebridge.portal.cli.base import Registry, Result, run_admin
from platebridge.portal.models import Community, Company, Site
from platebridge.portal.services import admin, tenancy
from platebridge.portal.settings import PortalSettings


async def _company(s: AsyncSession, ref: str) -> Company:
    return await admin.resolve(s, Company, ref, "company")


async def _community(s: AsyncSession, ref: str, company_ref: str | None) -> Community:
    scope: dict[str, Any] = {}
    if company_ref is not None:
        scope["company_id"] = (await _company(s, company_ref)).id
    return await admin.resolve(s, Community, ref, "community", **scope)


async def _site(s: AsyncSession, ref: str, company_ref: str | None) -> Site:
    scope: dict[str, Any] = {}
    if company_ref is not None:
        scope["company_id"] = (await _company(s, company_ref)).id
    return await admin.resolve(s, Site, ref, "site", **scope)


# --- company (operator level) ---------------------------------------------------------------


def cmd_company_create(args: argparse.Namespace, settings: PortalSettings) -> Result:
    async def action(s: AsyncSession) -> Result:
        c = await tenancy.create_company(s, args.name)
        return {"company_id": str(c.id), "name": c.name}

    return run_admin(settings, action)


def cmd_company_list(args: argparse.Namespace, settings: PortalSettings) -> Result:
    async def action(s: AsyncSession) -> Result:
        return {"companies": await tenancy.list_companies(s)}

    return run_admin(settings, action)


def cmd_company_show(args: argparse.Namespace, settings: PortalSettings) -> Result:
    async def action(s: AsyncSession) -> Result:
        return await tenancy.company_dict(s, await _company(s, args.company))

    return run_admin(settings, action)


def cmd_company_update(args: argparse.Namespace, settings: PortalSettings) -> Result:
    async def action(s: AsyncSession) -> Result:
        company = await tenancy.rename_company(s, await _company(s, args.company), args.name)
        return await tenancy.company_dict(s, company)

    return run_admin(settings, action)


def cmd_company_delete(args: argparse.Namespace, settings: PortalSettings) -> Result:
    async def action(s: AsyncSession) -> Result:
        company = await _company(s, args.company)
        await tenancy.delete_company(s, company)
        return {"deleted": True, "company_id": str(company.id), "name": company.name}

    return run_admin(settings, action)


# --- community -------------------------------------------------------------------------------


def cmd_community_create(args: argparse.Namespace, settings: PortalSettings) -> Result:
    async def action(s: AsyncSession) -> Result:
        company = await _company(s, args.company)
        c = await tenancy.create_community(s, company.id, args.name, None)
        return {"community_id": str(c.id), "company_id": str(c.company_id), "name": c.name}

    return run_admin(settings, action)


def cmd_community_list(args: argparse.Namespace, settings: PortalSettings) -> Result:
    async def action(s: AsyncSession) -> Result:
        company = await _company(s, args.company)
        communities = await tenancy.list_communities(s, company.id)
        return {"company_id": str(company.id), "communities": communities}

    return run_admin(settings, action)


def cmd_community_show(args: argparse.Namespace, settings: PortalSettings) -> Result:
    async def action(s: AsyncSession) -> Result:
        return await tenancy.community_dict(s, await _community(s, args.community, args.company))

    return run_admin(settings, action)


def cmd_community_update(args: argparse.Namespace, settings: PortalSettings) -> Result:
    async def action(s: AsyncSession) -> Result:
        community = await _community(s, args.community, args.company)
        await tenancy.rename_community(s, community, args.name, None)
        return await tenancy.community_dict(s, community)

    return run_admin(settings, action)


def cmd_community_delete(args: argparse.Namespace, settings: PortalSettings) -> Result:
    async def action(s: AsyncSession) -> Result:
        community = await _community(s, args.community, args.company)
        await tenancy.delete_community(s, community, None)
        return {"deleted": True, "community_id": str(community.id), "name": community.name}

    return run_admin(settings, action)


# --- site ------------------------------------------------------------------------------------


def cmd_site_create(args: argparse.Namespace, settings: PortalSettings) -> Result:
    async def action(s: AsyncSession) -> Result:
        community = await _community(s, args.community, None)
        site = await tenancy.create_site(s, community, args.name, None)
        return {
            "site_id": str(site.id),
            "community_id": str(site.community_id),
            "company_id": str(site.company_id),
            "name": site.name,
        }

    return run_admin(settings, action)


def cmd_site_list(args: argparse.Namespace, settings: PortalSettings) -> Result:
    async def action(s: AsyncSession) -> Result:
        company = await _company(s, args.company)
        community = None
        if args.community is not None:
            community = (await _community(s, args.community, args.company)).id
        sites = await tenancy.list_sites(s, company.id, community)
        return {"company_id": str(company.id), "sites": sites}

    return run_admin(settings, action)


def cmd_site_show(args: argparse.Namespace, settings: PortalSettings) -> Result:
    async def action(s: AsyncSession) -> Result:
        return await tenancy.site_dict(s, await _site(s, args.site, args.company))

    return run_admin(settings, action)


def cmd_site_update(args: argparse.Namespace, settings: PortalSettings) -> Result:
    async def action(s: AsyncSession) -> Result:
        site = await _site(s, args.site, args.company)
        await tenancy.rename_site(s, site, args.name, None)
        return await tenancy.site_dict(s, site)

    return run_admin(settings, action)


def cmd_site_delete(args: argparse.Namespace, settings: PortalSettings) -> Result:
    async def action(s: AsyncSession) -> Result:
        site = await _site(s, args.site, args.company)
        await tenancy.delete_site(s, site, None)
        return {"deleted": True, "site_id": str(site.id), "name": site.name}

    return run_admin(settings, action)


def cmd_site_enrollment_key(args: argparse.Namespace, settings: PortalSettings) -> Result:
    async def action(s: AsyncSession) -> Result:
        site, issued = await admin.issue_enrollment_key(s, args.site)
        tenancy.record_enrollment_key(s, site, issued.key.id, None)
        return {
            "site_id": str(site.id),
            "company_id": str(site.company_id),
            "key_id": str(issued.key.id),
            "api_key": issued.api_key,
        }

    return run_admin(settings, action)


def _scope(sp: argparse.ArgumentParser, required: bool = False) -> None:
    sp.add_argument(
        "--company",
        required=required,
        help="company id or unique name" + ("" if required else " (when a name is ambiguous)"),
    )


def register(reg: Registry) -> None:
    reg.group("company", "companies")
    sp = reg.command(cmd_company_create, "create", group="company")
    sp.add_argument("--name", required=True)
    reg.command(cmd_company_list, "list", group="company", help_text="every company")
    for func, name, help_text in (
        (cmd_company_show, "show", "one company with its counts"),
        (cmd_company_update, "update", "rename"),
        (cmd_company_delete, "delete", "delete (refused while it holds PODs)"),
    ):
        sp = reg.command(func, name, group="company", help_text=help_text)
        sp.add_argument("--company", required=True, help="company id or unique name")
        if name == "update":
            sp.add_argument("--name", required=True, help="new name")

    reg.group("community", "communities")
    sp = reg.command(cmd_community_create, "create", group="community")
    sp.add_argument("--company", required=True, help="company id or unique name")
    sp.add_argument("--name", required=True)
    sp = reg.command(cmd_community_list, "list", group="community", help_text="with their sites")
    _scope(sp, required=True)
    for func, name, help_text in (
        (cmd_community_show, "show", "one community with its sites"),
        (cmd_community_update, "update", "rename"),
        (cmd_community_delete, "delete", "delete (refused while its sites hold PODs)"),
    ):
        sp = reg.command(func, name, group="community", help_text=help_text)
        sp.add_argument("--community", required=True, help="community id or name")
        _scope(sp)
        if name == "update":
            sp.add_argument("--name", required=True, help="new name")

    reg.group("site", "sites and their enrollment keys")
    sp = reg.command(cmd_site_create, "create", group="site")
    sp.add_argument("--community", required=True, help="community id or unique name")
    sp.add_argument("--name", required=True)
    sp = reg.command(
        cmd_site_enrollment_key,
        "enrollment-key",
        group="site",
        help_text="issue a key that registers new PODs",
    )
    sp.add_argument("--site", required=True, help="site id or unique name")
    sp = reg.command(cmd_site_list, "list", group="site", help_text="a company's sites")
    _scope(sp, required=True)
    sp.add_argument("--community", help="only this community's (id or name)")
    for func, name, help_text in (
        (cmd_site_show, "show", "one site"),
        (cmd_site_update, "update", "rename"),
        (cmd_site_delete, "delete", "delete (refused while it holds PODs)"),
    ):
        sp = reg.command(func, name, group="site", help_text=help_text)
        sp.add_argument("--site", required=True, help="site id or name")
        _scope(sp)
        if name == "update":
            sp.add_argument("--name", required=True, help="new name")
