"""``pod`` commands: create, keys, stream secret, stream mode."""

from __future__ import annotations

import argparse

from sqlalchemy.ext.asyncio import AsyncSession

from platebridge.portal.cli.base import DEFAULT_PORT, Registry, Result, run_admin
from platebridge.portal.models import STREAM_MODES
from platebridge.portal.services import admin
from platebridge.portal.services.pod_config import render_pod_config
from platebridge.portal.settings import PortalSettings


def cmd_pod_create(args: argparse.Namespace, settings: PortalSettings) -> Result:
    async def action(s: AsyncSession) -> Result:
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

    return run_admin(settings, action)


def _print_created(command: str, result: Result) -> None:
    print(f"pod {result['pod_id']} created (id {result['pod_uuid']})")
    print(f"API key (shown once):       {result['api_key']}")
    print(f"stream secret (shown once): {result['stream_token_secret']}")
    print("\nPOD config.yaml:\n")
    print(result["config_yaml"])


def cmd_pod_rotate_key(args: argparse.Namespace, settings: PortalSettings) -> Result:
    async def action(s: AsyncSession) -> Result:
        pod = await admin.find_pod(s, args.pod_id, args.company)
        issued = await admin.rotate_pod_key(s, pod)
        return {
            "pod_id": pod.pod_id,
            "company_id": str(pod.company_id),
            "key_id": str(issued.key.id),
            "api_key": issued.api_key,
        }

    return run_admin(settings, action)


def cmd_pod_rotate_secret(args: argparse.Namespace, settings: PortalSettings) -> Result:
    async def action(s: AsyncSession) -> Result:
        pod = await admin.find_pod(s, args.pod_id, args.company)
        secret = await admin.rotate_pod_stream_secret(s, pod)
        return {
            "pod_id": pod.pod_id,
            "company_id": str(pod.company_id),
            "stream_token_secret": secret,
            "next_step": "put stream_token_secret into the POD's config.yaml and restart the "
            "POD agent; until then streams of this pod fail (the POD refuses the new tokens)",
        }

    return run_admin(settings, action)


def cmd_pod_set_mode(args: argparse.Namespace, settings: PortalSettings) -> Result:
    async def action(s: AsyncSession) -> Result:
        pod = await admin.find_pod(s, args.pod_id, args.company)
        pod.stream_mode = args.mode
        return {"pod_id": pod.pod_id, "company_id": str(pod.company_id), "stream_mode": args.mode}

    return run_admin(settings, action)


def _company_flag(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--company", help="company id or name, when the pod id is not unique")


def register(reg: Registry) -> None:
    reg.group("pod", "PODs and their keys")
    sp = reg.command(cmd_pod_create, "create", group="pod", human=_print_created)
    sp.add_argument("--site", required=True, help="site id or unique name")
    sp.add_argument("--pod-id", required=True, help="wire id, e.g. main-gate-pod")
    sp.add_argument("--name", help="display name (default: the pod id)")
    sp.add_argument(
        "--portal-url",
        default=f"http://127.0.0.1:{DEFAULT_PORT}",
        help="portal URL written into the POD config",
    )
    sp = reg.command(
        cmd_pod_rotate_key, "rotate-key", group="pod", help_text="revoke the key, issue a new one"
    )
    sp.add_argument("--pod-id", required=True)
    _company_flag(sp)
    sp = reg.command(
        cmd_pod_rotate_secret,
        "rotate-secret",
        group="pod",
        help_text="new stream secret (old stream tokens refused; the POD config needs the new one)",
    )
    sp.add_argument("--pod-id", required=True)
    _company_flag(sp)
    sp = reg.command(
        cmd_pod_set_mode,
        "set-mode",
        group="pod",
        help_text="stream method: proxy, direct, tunnel or auto (new pods: auto)",
    )
    sp.add_argument("--pod-id", required=True)
    sp.add_argument("--mode", required=True, choices=list(STREAM_MODES))
    _company_flag(sp)
