"""``migrate``, ``serve`` and ``demo-seed``."""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys

from sqlalchemy.ext.asyncio import AsyncSession

from platebridge.core.redact import install_log_redaction, redact_text
from platebridge.portal.cli.base import DEFAULT_PORT, CliError, Registry, Result, migrate, run_admin
from platebridge.portal.services.demo import seed_demo
from platebridge.portal.settings import PortalSettings


def cmd_migrate(args: argparse.Namespace, settings: PortalSettings) -> Result:
    migrate(settings)
    return {"ok": True, "revision": "head", "database": redact_text(settings.database_url)}


def cmd_serve(args: argparse.Namespace, settings: PortalSettings) -> Result | None:
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
        migrate(settings)
    if args.json:
        print(json.dumps({"url": f"http://{_host(args.host)}:{args.port}", "pid": os.getpid()}))
        sys.stdout.flush()
    app = create_app(settings)
    freeze_startup_heap()
    uvicorn.run(
        app,
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


def freeze_startup_heap() -> None:
    """Move every object alive now (modules, the app, its routes and models) out of the
    garbage collector's reach (``gc.freeze``): they live as long as the process.

    Without it each full (generation 2) collection walked them all: 90-140 ms with the
    event loop stopped, every few seconds at 2,000 heartbeats/s — one process's p99 of
    150-250 ms at 2,000/s was those pauses; frozen, 9-12 ms (docs/performance.md). Garbage
    made later is still collected."""
    gc.collect()
    gc.freeze()


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def cmd_demo_seed(args: argparse.Namespace, settings: PortalSettings) -> Result:
    async def action(s: AsyncSession) -> Result:
        return await seed_demo(s, args.portal_url)

    return run_admin(settings, action)


def _demo_banner(command: str, d: Result) -> None:
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
    print(f"""
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
""")


def register(reg: Registry) -> None:
    reg.command(cmd_migrate, "migrate", help_text="migrate the database schema")

    sp = reg.command(cmd_serve, "serve", help_text="run the portal (migrates first)")
    sp.add_argument("--host", default="127.0.0.1")
    sp.add_argument("--port", type=int, default=DEFAULT_PORT)
    sp.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])

    sp = reg.command(
        cmd_demo_seed, "demo-seed", help_text="create/refresh the demo tenant", human=_demo_banner
    )
    sp.add_argument("--portal-url", default=f"http://127.0.0.1:{DEFAULT_PORT}")
