"""``company``, ``community`` and ``site`` commands (companies: operators only, CLI only)."""

from __future__ import annotations

import argparse

from sqlalchemy.ext.asyncio import AsyncSession

from platebridge.portal.cli.base import Registry, Result, run_admin
from platebridge.portal.services import admin
from platebridge.portal.settings import PortalSettings


def cmd_company_create(args: argparse.Namespace, settings: PortalSettings) -> Result:
    async def action(s: AsyncSession) -> Result:
        c = await admin.create_company(s, args.name)
        return {"company_id": str(c.id), "name": c.name}

    return run_admin(settings, action)


def cmd_community_create(args: argparse.Namespace, settings: PortalSettings) -> Result:
    async def action(s: AsyncSession) -> Result:
        c = await admin.create_community(s, args.company, args.name)
        return {"community_id": str(c.id), "company_id": str(c.company_id), "name": c.name}

    return run_admin(settings, action)


def cmd_site_create(args: argparse.Namespace, settings: PortalSettings) -> Result:
    async def action(s: AsyncSession) -> Result:
        site = await admin.create_site(s, args.community, args.name)
        return {
            "site_id": str(site.id),
            "community_id": str(site.community_id),
            "company_id": str(site.company_id),
            "name": site.name,
        }

    return run_admin(settings, action)


def cmd_site_enrollment_key(args: argparse.Namespace, settings: PortalSettings) -> Result:
    async def action(s: AsyncSession) -> Result:
        site, issued = await admin.issue_enrollment_key(s, args.site)
        return {
            "site_id": str(site.id),
            "company_id": str(site.company_id),
            "key_id": str(issued.key.id),
            "api_key": issued.api_key,
        }

    return run_admin(settings, action)


def register(reg: Registry) -> None:
    reg.group("company", "companies")
    sp = reg.command(cmd_company_create, "create", group="company")
    sp.add_argument("--name", required=True)

    reg.group("community", "communities")
    sp = reg.command(cmd_community_create, "create", group="community")
    sp.add_argument("--company", required=True, help="company id or unique name")
    sp.add_argument("--name", required=True)

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
