"""``user`` commands: create, list, show, update, disable, enable, delete, invite, reset-password.

The operator's CLI (actor ``operator`` in the change trail). A company's first admin: ``user
invite --company C --email E --role admin`` (a link, mailed or printed once) or ``user create
--company C --email E --password P --role admin``. The last-admin rule holds here too.
"""

from __future__ import annotations

import argparse
import asyncio
import uuid
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession

from platebridge.core.errors import PlateBridgeError
from platebridge.portal.cli.base import CliError, Registry, Result, run_admin
from platebridge.portal.models import Company, User
from platebridge.portal.services import admin, users
from platebridge.portal.services.changes import record_change
from platebridge.portal.services.user_mail import deliver
from platebridge.portal.services.users import IssuedLink
from platebridge.portal.settings import PortalSettings


def _run(settings: PortalSettings, action: Callable[[AsyncSession], Awaitable[Result]]) -> Result:
    try:
        return run_admin(settings, action)
    except PlateBridgeError as exc:
        raise CliError(exc.message) from None


async def _company_id(s: AsyncSession, ref: str | None) -> uuid.UUID | None:
    if ref is None:
        return None
    return (await admin.resolve(s, Company, ref, "company")).id


async def _user(s: AsyncSession, args: argparse.Namespace) -> User:
    company_id = await _company_id(s, args.company)
    if company_id is None and "@" not in args.user:
        try:
            uuid.UUID(args.user)
        except ValueError:
            raise CliError("--user must be a user id or an e-mail address") from None
    return await users.get_user(s, company_id, args.user, by_email=True)


def _link_base(args: argparse.Namespace, settings: PortalSettings) -> str:
    base = args.portal_url or settings.public_url
    if not base:
        raise CliError("pass --portal-url (or set PLATEBRIDGE_PUBLIC_URL): the link needs it")
    return str(base)


def _deliver(settings: PortalSettings, link: IssuedLink, base: str) -> Result:
    try:
        delivery = asyncio.run(deliver(settings, link, base))
    except PlateBridgeError as exc:
        raise CliError(f"{exc.message}; the link was made but not sent: run this again") from None
    return {"user": users.user_dict(link.user), "link": dict(delivery)}


def cmd_user_create(args: argparse.Namespace, settings: PortalSettings) -> Result:
    async def action(s: AsyncSession) -> Result:
        u = await admin.create_user(s, args.company, args.email, args.password, args.role)
        u.password_changed_at = u.created_at
        record_change(
            s,
            actor=None,
            company_id=u.company_id,
            action="user.create",
            object_type="user",
            object_id=str(u.id),
            detail={"email": u.email, "role": u.role},
        )
        return {
            "user_id": str(u.id),
            "company_id": str(u.company_id),
            "email": u.email,
            "role": u.role,
        }

    return run_admin(settings, action)


def cmd_user_list(args: argparse.Namespace, settings: PortalSettings) -> Result:
    async def action(s: AsyncSession) -> Result:
        company_id = await _company_id(s, args.company)
        assert company_id is not None  # --company is required
        return {"users": [users.user_dict(u) for u in await users.list_users(s, company_id)]}

    return _run(settings, action)


def cmd_user_show(args: argparse.Namespace, settings: PortalSettings) -> Result:
    async def action(s: AsyncSession) -> Result:
        return users.user_dict(await _user(s, args))

    return _run(settings, action)


def cmd_user_update(args: argparse.Namespace, settings: PortalSettings) -> Result:
    if args.role is None and args.password is None:
        raise CliError("nothing to change: pass --role and/or --password")

    async def action(s: AsyncSession) -> Result:
        user = await _user(s, args)
        if args.role is not None:
            await users.set_role(s, user, args.role, actor=None)
        if args.password is not None:
            await users.set_password(s, user, args.password, actor=None)
        return users.user_dict(user)

    return _run(settings, action)


def _state_command(
    change: Callable[..., Awaitable[object]],
) -> Callable[[argparse.Namespace, PortalSettings], Result]:
    def command(args: argparse.Namespace, settings: PortalSettings) -> Result:
        async def action(s: AsyncSession) -> Result:
            user = await _user(s, args)
            await change(s, user, actor=None)
            return users.user_dict(user)

        return _run(settings, action)

    return command


def cmd_user_delete(args: argparse.Namespace, settings: PortalSettings) -> Result:
    async def action(s: AsyncSession) -> Result:
        user = await _user(s, args)
        await users.delete(s, user, actor=None)
        return {"deleted": True, "user_id": str(user.id), "email": user.email}

    return _run(settings, action)


def cmd_user_invite(args: argparse.Namespace, settings: PortalSettings) -> Result:
    base = _link_base(args, settings)

    async def action(s: AsyncSession) -> Result:
        company_id = await _company_id(s, args.company)
        assert company_id is not None
        link = await users.invite(
            s, company_id, args.email, args.role, actor=None, ttl=settings.user_link_ttl
        )
        return {"link": link}

    made = _run(settings, action)
    return _deliver(settings, made["link"], base)


def cmd_user_reset_password(args: argparse.Namespace, settings: PortalSettings) -> Result:
    base = _link_base(args, settings)

    async def action(s: AsyncSession) -> Result:
        user = await _user(s, args)
        return {"link": await users.issue_reset(s, user, actor=None, ttl=settings.user_link_ttl)}

    made = _run(settings, action)
    return _deliver(settings, made["link"], base)


def print_users(command: str, result: Result) -> None:
    for u in result["users"]:
        print(f"{u['email']:<40} {u['role']:<7} {u['status']:<9} {u['id']}")


def print_link(command: str, result: Result) -> None:
    user, link = result["user"], result["link"]
    print(f"user: {user['email']} ({user['role']}, {user['status']}) {user['id']}")
    if link["url"]:
        print(f"link (shown once, valid until {link['expires_at']}): {link['url']}")
    else:
        print(f"link e-mailed to {link['sent_to']} (valid until {link['expires_at']})")


def register(reg: Registry) -> None:
    reg.group("user", "portal users")
    sp = reg.command(cmd_user_create, "create", group="user", help_text="a user with a password")
    sp.add_argument("--company", required=True, help="company id or unique name")
    sp.add_argument("--email", required=True)
    sp.add_argument("--password", required=True)
    sp.add_argument("--role", required=True, choices=list(admin.ROLES))

    sp = reg.command(
        cmd_user_list, "list", group="user", help_text="a company's users", human=print_users
    )
    sp.add_argument("--company", required=True, help="company id or unique name")

    def addressed(
        func: Callable[..., Result], name: str, help_text: str
    ) -> argparse.ArgumentParser:
        sp = reg.command(func, name, group="user", help_text=help_text)
        sp.add_argument("--user", required=True, help="user id or e-mail address")
        sp.add_argument("--company", help="only within this company (id or unique name)")
        return sp

    addressed(cmd_user_show, "show", "one user")
    sp = addressed(cmd_user_update, "update", "change role and/or password")
    sp.add_argument("--role", choices=list(admin.ROLES))
    sp.add_argument("--password", help="a new password (every session of the user ends)")
    addressed(_state_command(users.disable), "disable", "sessions and stream tokens stop")
    addressed(_state_command(users.enable), "enable", "allow signing in again")
    addressed(cmd_user_delete, "delete", "remove the user")
    sp = addressed(cmd_user_reset_password, "reset-password", "a single-use reset link")
    sp.set_defaults(human=print_link)
    sp.add_argument("--portal-url", help="the portal's address for the link")

    sp = reg.command(
        cmd_user_invite, "invite", group="user", help_text="invite by e-mail", human=print_link
    )
    sp.add_argument("--company", required=True, help="company id or unique name")
    sp.add_argument("--email", required=True)
    sp.add_argument("--role", default="viewer", choices=list(admin.ROLES))
    sp.add_argument("--portal-url", help="the portal's address for the link")
