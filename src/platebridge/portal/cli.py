"""``platebridge-portal``: migrate, serve and administer tenants, users and PODs.

Every command accepts ``--json`` and then prints exactly one JSON object. Errors exit with
status 1 and one line on stderr (usage errors: argparse's status 2).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from platebridge.core.redact import install_log_redaction, redact_text
from platebridge.portal import migrate as migrations
from platebridge.portal.db import Database
from platebridge.portal.models import STREAM_MODES, Company
from platebridge.portal.scoping import company_audit_events
from platebridge.portal.services import admin, audit
from platebridge.portal.services.demo import seed_demo
from platebridge.portal.services.pod_config import render_pod_config
from platebridge.portal.settings import PortalSettings

DEFAULT_PORT = 8080


class CliError(Exception):
    """A one-line failure message for the user."""


def _settings() -> PortalSettings:
    try:
        return PortalSettings()
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "settings"
        raise CliError(f"invalid setting PLATEBRIDGE_{field.upper()}: {first['msg']}") from None


def _migrate(settings: PortalSettings) -> None:
    migrations.upgrade(settings.database_url)


def _run_admin(
    settings: PortalSettings, action: Callable[[AsyncSession], Awaitable[dict[str, Any]]]
) -> dict[str, Any]:
    if settings.migrate_on_start:
        _migrate(settings)

    async def run() -> dict[str, Any]:
        db = Database(settings.database_url)
        try:
            async with db.write() as session:
                return await action(session)
        finally:
            await db.dispose()

    return asyncio.run(run())


# --- commands ----------------------------------------------------------------------------------


def cmd_migrate(args: argparse.Namespace, settings: PortalSettings) -> dict[str, Any]:
    _migrate(settings)
    return {"ok": True, "revision": "head", "database": redact_text(settings.database_url)}


def cmd_serve(args: argparse.Namespace, settings: PortalSettings) -> dict[str, Any] | None:
    import uvicorn

    from platebridge.portal.app import create_app
    from platebridge.portal.log_redaction import logging_config

    install_log_redaction()  # every library's records, whatever their logger or handler
    problems = settings.production_problems()
    if problems:
        raise CliError(
            "refusing to start in production with development defaults: " + "; ".join(problems)
        )
    if settings.migrate_on_start:
        _migrate(settings)
    if args.json:
        print(json.dumps({"url": f"http://{_host(args.host)}:{args.port}", "pid": _pid()}))
        sys.stdout.flush()
    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        log_config=logging_config(args.log_level),  # tokens in query strings are masked
        proxy_headers=bool(settings.trusted_proxies),  # only a named proxy's headers count
        forwarded_allow_ips=settings.trusted_proxies or None,
        server_header=False,
        # Video is compressed already: deflating each live fragment per viewer only costs CPU.
        ws_per_message_deflate=False,
    )
    return None


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _pid() -> int:
    import os

    return os.getpid()


def cmd_company_create(args: argparse.Namespace, settings: PortalSettings) -> dict[str, Any]:
    async def action(s: AsyncSession) -> dict[str, Any]:
        c = await admin.create_company(s, args.name)
        return {"company_id": str(c.id), "name": c.name}

    return _run_admin(settings, action)


def cmd_community_create(args: argparse.Namespace, settings: PortalSettings) -> dict[str, Any]:
    async def action(s: AsyncSession) -> dict[str, Any]:
        c = await admin.create_community(s, args.company, args.name)
        return {"community_id": str(c.id), "company_id": str(c.company_id), "name": c.name}

    return _run_admin(settings, action)


def cmd_site_create(args: argparse.Namespace, settings: PortalSettings) -> dict[str, Any]:
    async def action(s: AsyncSession) -> dict[str, Any]:
        site = await admin.create_site(s, args.community, args.name)
        return {
            "site_id": str(site.id),
            "community_id": str(site.community_id),
            "company_id": str(site.company_id),
            "name": site.name,
        }

    return _run_admin(settings, action)


def cmd_user_create(args: argparse.Namespace, settings: PortalSettings) -> dict[str, Any]:
    async def action(s: AsyncSession) -> dict[str, Any]:
        u = await admin.create_user(s, args.company, args.email, args.password, args.role)
        return {
            "user_id": str(u.id),
            "company_id": str(u.company_id),
            "email": u.email,
            "role": u.role,
        }

    return _run_admin(settings, action)


def cmd_pod_create(args: argparse.Namespace, settings: PortalSettings) -> dict[str, Any]:
    async def action(s: AsyncSession) -> dict[str, Any]:
        created = await admin.create_pod(s, args.site, args.pod_id, args.name)
        pod = created.pod
        return {
            "pod_id": pod.pod_id,
            "pod_uuid": str(pod.id),
            "name": pod.name,
            "site_id": str(pod.site_id),
            "company_id": str(pod.company_id),
            "api_key": created.api_key,
            "stream_token_secret": created.stream_token_secret,
            "config_yaml": render_pod_config(
                pod.pod_id, args.portal_url, created.api_key, created.stream_token_secret
            ),
        }

    return _run_admin(settings, action)


def cmd_pod_rotate_key(args: argparse.Namespace, settings: PortalSettings) -> dict[str, Any]:
    async def action(s: AsyncSession) -> dict[str, Any]:
        pod = await admin.find_pod(s, args.pod_id, args.company)
        issued = await admin.rotate_pod_key(s, pod)
        return {
            "pod_id": pod.pod_id,
            "company_id": str(pod.company_id),
            "key_id": str(issued.key.id),
            "api_key": issued.api_key,
        }

    return _run_admin(settings, action)


def cmd_pod_rotate_secret(args: argparse.Namespace, settings: PortalSettings) -> dict[str, Any]:
    async def action(s: AsyncSession) -> dict[str, Any]:
        pod = await admin.find_pod(s, args.pod_id, args.company)
        secret = await admin.rotate_pod_stream_secret(s, pod)
        return {
            "pod_id": pod.pod_id,
            "company_id": str(pod.company_id),
            "stream_token_secret": secret,
            "next_step": "put stream_token_secret into the POD's config.yaml and restart the "
            "POD agent; until then streams of this pod fail (the POD refuses the new tokens)",
        }

    return _run_admin(settings, action)


def cmd_pod_set_mode(args: argparse.Namespace, settings: PortalSettings) -> dict[str, Any]:
    async def action(s: AsyncSession) -> dict[str, Any]:
        pod = await admin.find_pod(s, args.pod_id, args.company)
        pod.stream_mode = args.mode
        return {"pod_id": pod.pod_id, "company_id": str(pod.company_id), "stream_mode": args.mode}

    return _run_admin(settings, action)


def _cli_time(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise CliError(f"--{name} is not an ISO 8601 time: {value[:40]!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def cmd_audit(args: argparse.Namespace, settings: PortalSettings) -> dict[str, Any]:
    flt = audit.AuditFilter(
        pod_id=args.pod_id,
        camera_id=args.camera,
        user=args.user,
        since=_cli_time(args.since, "since"),
        until=_cli_time(args.until, "until"),
        limit=args.limit,
    )

    async def action(s: AsyncSession) -> dict[str, Any]:
        company = await admin.resolve(s, Company, args.company, "company")
        events = await audit.list_events(s, company_audit_events(company.id), flt)
        return {"company_id": str(company.id), "events": events}

    return _run_admin(settings, action)


def cmd_site_enrollment_key(args: argparse.Namespace, settings: PortalSettings) -> dict[str, Any]:
    async def action(s: AsyncSession) -> dict[str, Any]:
        site, issued = await admin.issue_enrollment_key(s, args.site)
        return {
            "site_id": str(site.id),
            "company_id": str(site.company_id),
            "key_id": str(issued.key.id),
            "api_key": issued.api_key,
        }

    return _run_admin(settings, action)


def cmd_demo_seed(args: argparse.Namespace, settings: PortalSettings) -> dict[str, Any]:
    async def action(s: AsyncSession) -> dict[str, Any]:
        return await seed_demo(s, args.portal_url)

    return _run_admin(settings, action)


# --- human-readable output -----------------------------------------------------------------------


def _demo_banner(d: dict[str, Any]) -> str:
    url = d["portal_url"]
    body = json.dumps(
        {
            "pod_id": d["pod_id"],
            "ip_address": "192.168.1.100",
            "firmware_version": "1.0.0",
            "status": "online",
            "cameras": [
                {
                    "camera_id": "gate-camera-1",
                    "name": "Main Gate Camera",
                    "rtsp_url": "rtsp://192.168.1.50:554/stream",
                    "position": "main entrance",
                }
            ],
        }
    )
    login = json.dumps({"email": d["email"], "password": d["password"]})
    return f"""
PlateBridge portal demo  ({url})
  login:  {d["email"]}  /  {d["password"]}
  pod:    {d["pod_id"]}  (stream secret {d["stream_token_secret"]})

Register the demo POD and its camera (from another terminal):
  curl -X POST {url}/api/pod/heartbeat \\
    -H "Authorization: Bearer {d["api_key"]}" \\
    -d '{body}'

Then list the cameras as the demo user:
  TOKEN=$(curl -s -X POST {url}/api/auth/login -H 'Content-Type: application/json' \\
    -d '{login}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  curl -s {url}/api/cameras -H "Authorization: Bearer $TOKEN"
"""


def _print_human(command: str, result: dict[str, Any]) -> None:
    if command == "demo-seed":
        print(_demo_banner(result))
        return
    if command == "pod create":
        print(f"pod {result['pod_id']} created (id {result['pod_uuid']})")
        print(f"API key (shown once):       {result['api_key']}")
        print(f"stream secret (shown once): {result['stream_token_secret']}")
        print("\nPOD config.yaml:\n")
        print(result["config_yaml"])
        return
    for key, value in result.items():
        print(f"{key}: {value}")


# --- parser --------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="platebridge-portal",
        description="PlateBridge portal. Database: PLATEBRIDGE_DATABASE_URL "
        "(unset: platebridge.db here).",
    )
    json_flag = argparse.ArgumentParser(add_help=False)
    json_flag.add_argument("--json", action="store_true", help="print one JSON object")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sp = sub.add_parser("migrate", parents=[json_flag], help="migrate the database schema")
    sp.set_defaults(func=cmd_migrate, cmd_name="migrate")

    sp = sub.add_parser("serve", parents=[json_flag], help="run the portal (migrates first)")
    sp.add_argument("--host", default="127.0.0.1")
    sp.add_argument("--port", type=int, default=DEFAULT_PORT)
    sp.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    sp.set_defaults(func=cmd_serve, cmd_name="serve")

    sp = sub.add_parser("demo-seed", parents=[json_flag], help="create/refresh the demo tenant")
    sp.add_argument("--portal-url", default=f"http://127.0.0.1:{DEFAULT_PORT}")
    sp.set_defaults(func=cmd_demo_seed, cmd_name="demo-seed")

    def group(name: str, help_text: str) -> argparse._SubParsersAction[argparse.ArgumentParser]:
        gp = sub.add_parser(name, help=help_text)
        return gp.add_subparsers(dest="action", required=True, metavar="ACTION")

    company = group("company", "companies")
    sp = company.add_parser("create", parents=[json_flag])
    sp.add_argument("--name", required=True)
    sp.set_defaults(func=cmd_company_create, cmd_name="company create")

    community = group("community", "communities")
    sp = community.add_parser("create", parents=[json_flag])
    sp.add_argument("--company", required=True, help="company id or unique name")
    sp.add_argument("--name", required=True)
    sp.set_defaults(func=cmd_community_create, cmd_name="community create")

    site = group("site", "sites and their enrollment keys")
    sp = site.add_parser("create", parents=[json_flag])
    sp.add_argument("--community", required=True, help="community id or unique name")
    sp.add_argument("--name", required=True)
    sp.set_defaults(func=cmd_site_create, cmd_name="site create")
    sp = site.add_parser(
        "enrollment-key", parents=[json_flag], help="issue a key that registers new PODs"
    )
    sp.add_argument("--site", required=True, help="site id or unique name")
    sp.set_defaults(func=cmd_site_enrollment_key, cmd_name="site enrollment-key")

    user = group("user", "portal users")
    sp = user.add_parser("create", parents=[json_flag])
    sp.add_argument("--company", required=True, help="company id or unique name")
    sp.add_argument("--email", required=True)
    sp.add_argument("--password", required=True)
    sp.add_argument("--role", required=True, choices=list(admin.ROLES))
    sp.set_defaults(func=cmd_user_create, cmd_name="user create")

    pod = group("pod", "PODs and their keys")
    sp = pod.add_parser("create", parents=[json_flag])
    sp.add_argument("--site", required=True, help="site id or unique name")
    sp.add_argument("--pod-id", required=True, help="wire id, e.g. main-gate-pod")
    sp.add_argument("--name", help="display name (default: the pod id)")
    sp.add_argument(
        "--portal-url",
        default=f"http://127.0.0.1:{DEFAULT_PORT}",
        help="portal URL written into the POD config",
    )
    sp.set_defaults(func=cmd_pod_create, cmd_name="pod create")
    sp = pod.add_parser("rotate-key", parents=[json_flag], help="revoke the key, issue a new one")
    sp.add_argument("--pod-id", required=True)
    sp.add_argument("--company", help="company id or name, when the pod id is not unique")
    sp.set_defaults(func=cmd_pod_rotate_key, cmd_name="pod rotate-key")
    sp = pod.add_parser(
        "rotate-secret",
        parents=[json_flag],
        help="new stream secret (old stream tokens refused; the POD config needs the new one)",
    )
    sp.add_argument("--pod-id", required=True)
    sp.add_argument("--company", help="company id or name, when the pod id is not unique")
    sp.set_defaults(func=cmd_pod_rotate_secret, cmd_name="pod rotate-secret")
    sp = pod.add_parser(
        "set-mode",
        parents=[json_flag],
        help="stream method: proxy, direct, tunnel or auto (new pods: auto)",
    )
    sp.add_argument("--pod-id", required=True)
    sp.add_argument("--mode", required=True, choices=list(STREAM_MODES))
    sp.add_argument("--company", help="company id or name, when the pod id is not unique")
    sp.set_defaults(func=cmd_pod_set_mode, cmd_name="pod set-mode")

    sp = sub.add_parser("audit", parents=[json_flag], help="a company's stream-access trail")
    sp.add_argument("--company", required=True, help="company id or unique name")
    sp.add_argument("--pod-id")
    sp.add_argument("--camera", help="camera id")
    sp.add_argument("--user", help="user id or e-mail")
    sp.add_argument("--since", help="ISO 8601 time (UTC when no zone is given)")
    sp.add_argument("--until", help="ISO 8601 time (UTC when no zone is given)")
    sp.add_argument("--limit", type=int, default=audit.DEFAULT_LIMIT)
    sp.set_defaults(func=cmd_audit, cmd_name="audit")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = _settings()
        result = args.func(args, settings)
    except (CliError, admin.AdminError) as exc:
        print(f"platebridge-portal: error: {exc}", file=sys.stderr)
        return 1
    except (SQLAlchemyError, OSError) as exc:
        detail = redact_text(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        print(f"platebridge-portal: database error: {detail[:300]}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    if result is not None:
        if args.json:
            print(json.dumps(result))
        else:
            _print_human(args.cmd_name, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
