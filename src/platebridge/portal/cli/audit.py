"""``audit``: a company's stream-access trail; ``audit --changes``: its admin-change trail."""

from __future__ import annotations

import argparse

from sqlalchemy.ext.asyncio import AsyncSession

from platebridge.portal.cli.base import Registry, Result, cli_time, run_admin
from platebridge.portal.models import Company
from platebridge.portal.scoping import company_audit_events
from platebridge.portal.services import admin, audit, changes
from platebridge.portal.settings import PortalSettings


def cmd_audit(args: argparse.Namespace, settings: PortalSettings) -> Result:
    if args.changes:
        return _changes(args, settings)
    flt = audit.AuditFilter(
        pod_id=args.pod_id,
        camera_id=args.camera,
        user=args.user,
        since=cli_time(args.since, "since"),
        until=cli_time(args.until, "until"),
        limit=args.limit,
    )

    async def action(s: AsyncSession) -> Result:
        company = await admin.resolve(s, Company, args.company, "company")
        events = await audit.list_events(s, company_audit_events(company.id), flt)
        return {"company_id": str(company.id), "events": events}

    return run_admin(settings, action)


def _changes(args: argparse.Namespace, settings: PortalSettings) -> Result:
    async def action(s: AsyncSession) -> Result:
        company = await admin.resolve(s, Company, args.company, "company")
        rows = await changes.list_changes(s, company.id, args.limit)
        return {"company_id": str(company.id), "changes": [changes.change_dict(r) for r in rows]}

    return run_admin(settings, action)


def register(reg: Registry) -> None:
    sp = reg.command(cmd_audit, "audit", help_text="a company's stream-access trail")
    sp.add_argument("--company", required=True, help="company id or unique name")
    sp.add_argument("--pod-id")
    sp.add_argument("--camera", help="camera id")
    sp.add_argument("--user", help="user id or e-mail")
    sp.add_argument("--since", help="ISO 8601 time (UTC when no zone is given)")
    sp.add_argument("--until", help="ISO 8601 time (UTC when no zone is given)")
    sp.add_argument("--limit", type=int, default=audit.DEFAULT_LIMIT)
    sp.add_argument(
        "--changes",
        action="store_true",
        help="the admin-change trail instead (who changed what, when; newest first)",
    )
