"""``pod`` commands: create, list, show, update (rename, move), decommission, enable, delete;
keys, stream secret, stream mode. Every change is in the company's change trail (``operator``).
"""

from __future__ import annotations

import argparse

from sqlalchemy.ext.asyncio import AsyncSession

from platebridge.portal.cli.base import DEFAULT_PORT, CliError, Registry, Result, run_admin
from platebridge.portal.models import STREAM_MODES, Company, Site
from platebridge.portal.services import admin, pod_lifecycle
from platebridge.portal.services.pod_config import render_pod_config
from platebridge.portal.settings import PortalSettings


def cmd_pod_create(args: argparse.Namespace, settings: PortalSettings) -> Result:
    async def action(s: AsyncSession) -> Result:
        site = await admin.resolve(s, Site, args.site, "site")
        created = await pod_lifecycle.create_pod(s, site, args.pod_id, args.name, None)
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
        issued = await pod_lifecycle.rotate_key(s, pod, None)
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
        secret = await pod_lifecycle.rotate_secret(s, pod, None)
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
        await pod_lifecycle.set_stream_mode(s, pod, args.mode, None)
        return {"pod_id": pod.pod_id, "company_id": str(pod.company_id), "stream_mode": args.mode}

    return run_admin(settings, action)


def cmd_pod_list(args: argparse.Namespace, settings: PortalSettings) -> Result:
    async def action(s: AsyncSession) -> Result:
        company = await admin.resolve(s, Company, args.company, "company")
        site = None
        if args.site is not None:
            site = (await admin.resolve(s, Site, args.site, "site", company_id=company.id)).id
        return {
            "company_id": str(company.id),
            "pods": await pod_lifecycle.list_pods(s, company.id, site),
        }

    return run_admin(settings, action)


def cmd_pod_show(args: argparse.Namespace, settings: PortalSettings) -> Result:
    async def action(s: AsyncSession) -> Result:
        return await pod_lifecycle.pod_dict(s, await admin.find_pod(s, args.pod_id, args.company))

    return run_admin(settings, action)


def cmd_pod_update(args: argparse.Namespace, settings: PortalSettings) -> Result:
    if args.name is None and args.site is None:
        raise CliError("nothing to change: give --name and/or --site")

    async def action(s: AsyncSession) -> Result:
        pod = await admin.find_pod(s, args.pod_id, args.company)
        note = None
        if args.name is not None:
            await pod_lifecycle.rename_pod(s, pod, args.name, None)
        if args.site is not None:
            site = await admin.resolve(s, Site, args.site, "site", company_id=pod.company_id)
            _, note = await pod_lifecycle.move_pod(s, pod, site, None)
        result = await pod_lifecycle.pod_dict(s, pod)
        if note:
            result["note"] = note
        return result

    return run_admin(settings, action)


def cmd_pod_decommission(args: argparse.Namespace, settings: PortalSettings) -> Result:
    async def action(s: AsyncSession) -> Result:
        pod = await admin.find_pod(s, args.pod_id, args.company)
        await pod_lifecycle.decommission(s, pod, None)
        result = await pod_lifecycle.pod_dict(s, pod)
        result["note"] = (
            "keys revoked, stream secret voided; the portal process holding this pod's tunnel "
            "closes it within its key re-check (PLATEBRIDGE_TUNNEL_REGISTRY_TTL / 3, 5 s by "
            "default), and the POD's redials are refused"
        )
        return result

    return run_admin(settings, action)


def cmd_pod_enable(args: argparse.Namespace, settings: PortalSettings) -> Result:
    async def action(s: AsyncSession) -> Result:
        pod = await admin.find_pod(s, args.pod_id, args.company)
        creds = await pod_lifecycle.reenable(s, pod, None)
        return {
            "pod_id": pod.pod_id,
            "pod_uuid": str(pod.id),
            "name": pod.name,
            "site_id": str(pod.site_id),
            "company_id": str(pod.company_id),
            "api_key": creds.api_key,
            "stream_token_secret": creds.stream_token_secret,
            "config_yaml": render_pod_config(
                pod.pod_id, args.portal_url, creds.api_key, creds.stream_token_secret
            ),
        }

    return run_admin(settings, action)


def _print_enabled(command: str, result: Result) -> None:
    print(f"pod {result['pod_id']} re-enabled (id {result['pod_uuid']})")
    print(f"API key (shown once):       {result['api_key']}")
    print(f"stream secret (shown once): {result['stream_token_secret']}")
    print("\nPOD config.yaml:\n")
    print(result["config_yaml"])


def cmd_pod_delete(args: argparse.Namespace, settings: PortalSettings) -> Result:
    async def action(s: AsyncSession) -> Result:
        pod = await admin.find_pod(s, args.pod_id, args.company)
        await pod_lifecycle.delete_pod(s, pod, None)
        return {"deleted": True, "pod_id": pod.pod_id, "company_id": str(pod.company_id)}

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
    sp = reg.command(cmd_pod_list, "list", group="pod", help_text="a company's PODs")
    sp.add_argument("--company", required=True, help="company id or unique name")
    sp.add_argument("--site", help="only this site's (id or name)")
    sp = reg.command(cmd_pod_show, "show", group="pod", help_text="one POD")
    sp.add_argument("--pod-id", required=True)
    _company_flag(sp)
    sp = reg.command(
        cmd_pod_update, "update", group="pod", help_text="rename and/or move to another site"
    )
    sp.add_argument("--pod-id", required=True)
    _company_flag(sp)
    sp.add_argument("--name", help="new display name")
    sp.add_argument("--site", help="move to this site of the same company (id or name)")
    sp = reg.command(
        cmd_pod_decommission,
        "decommission",
        group="pod",
        help_text="take out of service: keys revoked, secret voided, cameras hidden",
    )
    sp.add_argument("--pod-id", required=True)
    _company_flag(sp)
    sp = reg.command(
        cmd_pod_enable,
        "enable",
        group="pod",
        help_text="re-enable a decommissioned POD (new key and stream secret, shown once)",
        human=_print_enabled,
    )
    sp.add_argument("--pod-id", required=True)
    _company_flag(sp)
    sp.add_argument(
        "--portal-url",
        default=f"http://127.0.0.1:{DEFAULT_PORT}",
        help="portal URL written into the POD config",
    )
    sp = reg.command(cmd_pod_delete, "delete", group="pod", help_text="delete a decommissioned POD")
    sp.add_argument("--pod-id", required=True)
    _company_flag(sp)
