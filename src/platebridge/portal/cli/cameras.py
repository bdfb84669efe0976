"""``camera`` commands: list, show, update (display name), delete (one the POD stopped
reporting). Every change is in the company's change trail (``operator``)."""

from __future__ import annotations

import argparse

from sqlalchemy.ext.asyncio import AsyncSession

from platebridge.portal.cli.base import Registry, Result, run_admin
from platebridge.portal.models import Camera, Company, Pod
from platebridge.portal.services import admin, camera_admin
from platebridge.portal.settings import PortalSettings


async def _camera(s: AsyncSession, args: argparse.Namespace) -> tuple[Camera, Pod]:
    pod = await admin.find_pod(s, args.pod_id, args.company)
    return await camera_admin.find_camera(s, pod, args.camera), pod


def cmd_camera_list(args: argparse.Namespace, settings: PortalSettings) -> Result:
    async def action(s: AsyncSession) -> Result:
        company = await admin.resolve(s, Company, args.company, "company")
        pod = None
        if args.pod_id is not None:
            pod = await admin.find_pod(s, args.pod_id, str(company.id))
        cameras = await camera_admin.list_cameras(s, company.id, pod)
        return {"company_id": str(company.id), "cameras": cameras}

    return run_admin(settings, action)


def cmd_camera_show(args: argparse.Namespace, settings: PortalSettings) -> Result:
    async def action(s: AsyncSession) -> Result:
        camera, pod = await _camera(s, args)
        return camera_admin.camera_dict(camera, pod)

    return run_admin(settings, action)


def cmd_camera_update(args: argparse.Namespace, settings: PortalSettings) -> Result:
    async def action(s: AsyncSession) -> Result:
        camera, pod = await _camera(s, args)
        await camera_admin.rename_camera(s, camera, pod, args.display_name, None)
        return camera_admin.camera_dict(camera, pod)

    return run_admin(settings, action)


def cmd_camera_delete(args: argparse.Namespace, settings: PortalSettings) -> Result:
    async def action(s: AsyncSession) -> Result:
        camera, pod = await _camera(s, args)
        await camera_admin.remove_camera(s, camera, pod, None)
        return {"deleted": True, "pod_id": pod.pod_id, "camera_id": camera.camera_id}

    return run_admin(settings, action)


def _ident(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--pod-id", required=True)
    sp.add_argument("--camera", required=True, help="camera id")
    sp.add_argument("--company", help="company id or name, when the pod id is not unique")


def register(reg: Registry) -> None:
    reg.group("camera", "cameras the PODs report")
    sp = reg.command(cmd_camera_list, "list", group="camera", help_text="a company's cameras")
    sp.add_argument("--company", required=True, help="company id or unique name")
    sp.add_argument("--pod-id", help="only this POD's")
    sp = reg.command(cmd_camera_show, "show", group="camera", help_text="one camera")
    _ident(sp)
    sp = reg.command(
        cmd_camera_update,
        "update",
        group="camera",
        help_text="set the display name (the POD's config is not touched)",
    )
    _ident(sp)
    sp.add_argument("--display-name", required=True, help="display name; an empty string clears it")
    sp = reg.command(
        cmd_camera_delete,
        "delete",
        group="camera",
        help_text="remove a camera the POD stopped reporting (it returns, with its display "
        "name, if reported again)",
    )
    _ident(sp)
