"""``user`` commands (the users helper of issue 15 extends this module)."""

from __future__ import annotations

import argparse

from sqlalchemy.ext.asyncio import AsyncSession

from platebridge.portal.cli.base import Registry, Result, run_admin
from platebridge.portal.services import admin
from platebridge.portal.settings import PortalSettings


def cmd_user_create(args: argparse.Namespace, settings: PortalSettings) -> Result:
    async def action(s: AsyncSession) -> Result:
        u = await admin.create_user(s, args.company, args.email, args.password, args.role)
        return {
            "user_id": str(u.id),
            "company_id": str(u.company_id),
            "email": u.email,
            "role": u.role,
        }

    return run_admin(settings, action)


def register(reg: Registry) -> None:
    reg.group("user", "portal users")
    sp = reg.command(cmd_user_create, "create", group="user")
    sp.add_argument("--company", required=True, help="company id or unique name")
    sp.add_argument("--email", required=True)
    sp.add_argument("--password", required=True)
    sp.add_argument("--role", required=True, choices=list(admin.ROLES))
