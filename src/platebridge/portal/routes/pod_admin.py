"""A POD's lifecycle for company admins (``services.pod_lifecycle``): create, rename, move,
decommission, re-enable, delete.

Admin-only; the pod (and a target site) is looked up through ``scoping``: another company's is
404, as one that does not exist. New keys and stream secrets are in the answer once
(``Cache-Control: no-store``) and nowhere else. The stream mode stays ``PATCH /api/pods/{id}``.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from platebridge.core.heartbeat import Slug
from platebridge.portal.deps import AdminUser, Db, Hub
from platebridge.portal.errors import ApiError
from platebridge.portal.scoping import get_pod_for_user, get_site_for_user
from platebridge.portal.services import pod_lifecycle
from platebridge.portal.services.pod_config import render_pod_config
from platebridge.portal.tunnel.hub import TunnelHub

router = APIRouter(prefix="/api/pods", tags=["pod lifecycle"])
PodId = Annotated[str, Path(max_length=64)]
#: WebSocket close code sent to a decommissioned pod's tunnel (policy violation).
CLOSE_DECOMMISSIONED = 1008


class NewPod(BaseModel):
    model_config = ConfigDict(extra="forbid")
    site_id: str = Field(max_length=64, description="the site the POD belongs to")
    new_pod_id: Slug = Field(description="the POD's wire id (its config's pod_id)")
    name: str | None = Field(None, min_length=1, max_length=200, description="display name")


class Rename(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200, description="display name")


class Move(BaseModel):
    model_config = ConfigDict(extra="forbid")
    site_id: str = Field(max_length=64, description="a site of the same company")


class Decommission(BaseModel):
    model_config = ConfigDict(extra="forbid")
    confirm: str | None = Field(
        None, max_length=64, description="the pod's id again, to confirm (required)"
    )


def close_tunnel(hub: TunnelHub, pod_uuid: uuid.UUID) -> bool:
    """Close the pod's tunnel at once if this process holds it (its key is revoked: it cannot
    come back). Another portal process holding it closes it at its next key re-check
    (``TunnelHub.recheck_keys``, every ``tunnel_registry_ttl / 3`` s), as after a CLI
    decommission."""
    conn = hub.local.get(pod_uuid)
    if conn is None:
        return False
    conn.close(CLOSE_DECOMMISSIONED, "pod decommissioned")
    return True


def _credentials(
    request: Request, response: Response, pod_id: str, api_key: str, secret: str
) -> dict[str, Any]:
    response.headers["Cache-Control"] = "no-store"
    portal_url = str(request.base_url).rstrip("/")
    return {
        "api_key": api_key,
        "stream_token_secret": secret,
        "config_yaml": render_pod_config(pod_id, portal_url, api_key, secret),
    }


@router.post("", status_code=201)
async def create_pod(
    body: NewPod, request: Request, response: Response, user: AdminUser, db: Db
) -> dict[str, Any]:
    async with db.write() as session:
        site = await get_site_for_user(session, user, body.site_id)
        created = await pod_lifecycle.create_pod(session, site, body.new_pod_id, body.name, user)
        result = await pod_lifecycle.pod_dict(session, created.pod)
    result.update(
        _credentials(
            request, response, result["pod_id"], created.api_key, created.stream_token_secret
        )
    )
    return result


@router.get("/{pod_id}/lifecycle")
async def pod_state(user: AdminUser, db: Db, pod_id: PodId) -> dict[str, Any]:
    """The admin's view of one pod (decommissioned ones included)."""
    async with db.read() as session:
        return await pod_lifecycle.pod_dict(session, await get_pod_for_user(session, user, pod_id))


@router.post("/{pod_id}/rename")
async def rename_pod(body: Rename, user: AdminUser, db: Db, pod_id: PodId) -> dict[str, Any]:
    async with db.write() as session:
        pod = await get_pod_for_user(session, user, pod_id)
        await pod_lifecycle.rename_pod(session, pod, body.name, user)
        return await pod_lifecycle.pod_dict(session, pod)


@router.post("/{pod_id}/move")
async def move_pod(body: Move, user: AdminUser, db: Db, pod_id: PodId) -> dict[str, Any]:
    async with db.write() as session:
        pod = await get_pod_for_user(session, user, pod_id)
        site = await get_site_for_user(session, user, body.site_id)
        _, note = await pod_lifecycle.move_pod(session, pod, site, user)
        result = await pod_lifecycle.pod_dict(session, pod)
    if note:
        result["note"] = note
    return result


@router.post("/{pod_id}/decommission")
async def decommission_pod(
    user: AdminUser, db: Db, hub: Hub, pod_id: PodId, body: Decommission | None = None
) -> dict[str, Any]:
    async with db.write() as session:
        pod = await get_pod_for_user(session, user, pod_id)  # 404 first: nothing else leaks
        if body is None or body.confirm != pod.pod_id:
            raise ApiError(
                422, "confirmation_required", "confirm must repeat the pod id to decommission it"
            )
        await pod_lifecycle.decommission(session, pod, user)
        result = await pod_lifecycle.pod_dict(session, pod)
        pod_uuid = pod.id
    result["tunnel_closed"] = close_tunnel(hub, pod_uuid)
    return result


@router.post("/{pod_id}/enable")
async def enable_pod(
    request: Request, response: Response, user: AdminUser, db: Db, pod_id: PodId
) -> dict[str, Any]:
    async with db.write() as session:
        pod = await get_pod_for_user(session, user, pod_id)
        creds = await pod_lifecycle.reenable(session, pod, user)
        result = await pod_lifecycle.pod_dict(session, pod)
    result.update(_credentials(request, response, pod_id, creds.api_key, creds.stream_token_secret))
    return result


@router.delete("/{pod_id}")
async def delete_pod(user: AdminUser, db: Db, pod_id: PodId) -> dict[str, Any]:
    async with db.write() as session:
        pod = await get_pod_for_user(session, user, pod_id)
        await pod_lifecycle.delete_pod(session, pod, user)
        return {"deleted": True, "pod_id": pod.pod_id}
