"""Admin forms of the PODs page. Each POST calls the same services as the CLI
(``services.admin``) after resolving its pod/site through ``scoping`` (404 outside the
company); secrets are shown once on the answering page (``Cache-Control: no-store``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from starlette.responses import RedirectResponse, Response

from platebridge.portal.csrf import form_fields
from platebridge.portal.db import Database
from platebridge.portal.deps import AdminUser, CurrentUser, Db, Hub, Settings, Streaming, page
from platebridge.portal.errors import ApiError
from platebridge.portal.listing import list_pods
from platebridge.portal.models import STREAM_MODES, Site, User, as_stream_mode
from platebridge.portal.pages.render import render
from platebridge.portal.scoping import get_pod_for_user, get_site_for_user, scoped_sites
from platebridge.portal.services import admin
from platebridge.portal.services.pod_config import render_pod_config
from platebridge.portal.settings import PortalSettings
from platebridge.portal.streaming.state import StreamingState
from platebridge.portal.tunnel.hub import TunnelHub

router = APIRouter(prefix="/pods", include_in_schema=False)
Slug = Annotated[str, Path(max_length=64)]


def portal_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


async def _pods_page(
    request: Request,
    user: User,
    db: Database,
    settings: PortalSettings,
    state: StreamingState,
    hub: TunnelHub,
    *,
    shown: dict[str, Any] | None = None,
    error: str = "",
    status_code: int = 200,
) -> Response:
    async with db.read() as session:
        pods = await list_pods(
            session,
            user,
            settings.offline_after,
            networks=state.networks,
            tunnels=hub.connected,
        )
        sites = list((await session.scalars(scoped_sites(user).order_by(Site.name))).all())
    return render(
        request,
        "pods.html",
        status_code,
        no_store=shown is not None,
        pods=pods,
        sites=sites,
        stream_modes=STREAM_MODES,
        shown=shown,
        error=error,
    )


@router.get("")
@page
async def pods_page(
    request: Request, user: CurrentUser, db: Db, settings: Settings, state: Streaming, hub: Hub
) -> Response:
    return await _pods_page(request, user, db, settings, state, hub)


@router.post("/new")
@page
async def add_pod(
    request: Request, user: AdminUser, db: Db, settings: Settings, state: Streaming, hub: Hub
) -> Response:
    form = await form_fields(request)
    try:
        async with db.write() as session:
            site = await get_site_for_user(session, user, form.get("site_id", ""))
            created = await admin.create_pod(
                session, str(site.id), form.get("pod_id", ""), form.get("name") or None
            )
            shown = {
                "title": f"POD {created.pod.pod_id} added",
                "api_key": created.api_key,
                "stream_token_secret": created.stream_token_secret,
                "config_yaml": render_pod_config(
                    created.pod.pod_id,
                    portal_url(request),
                    created.api_key,
                    created.stream_token_secret,
                ),
            }
    except admin.AdminError as exc:
        return await _pods_page(
            request, user, db, settings, state, hub, error=str(exc), status_code=400
        )
    return await _pods_page(request, user, db, settings, state, hub, shown=shown)


@router.post("/{pod_id}/rotate-key")
@page
async def rotate_key(
    request: Request,
    user: AdminUser,
    db: Db,
    settings: Settings,
    state: Streaming,
    hub: Hub,
    pod_id: Slug,
) -> Response:
    async with db.write() as session:
        pod = await get_pod_for_user(session, user, pod_id)
        issued = await admin.rotate_pod_key(session, pod)
    shown = {
        "title": f"New API key for POD {pod_id} (the old one is revoked)",
        "api_key": issued.api_key,
    }
    return await _pods_page(request, user, db, settings, state, hub, shown=shown)


@router.post("/{pod_id}/rotate-secret")
@page
async def rotate_secret(
    request: Request,
    user: AdminUser,
    db: Db,
    settings: Settings,
    state: Streaming,
    hub: Hub,
    pod_id: Slug,
) -> Response:
    async with db.write() as session:
        pod = await get_pod_for_user(session, user, pod_id)
        secret = await admin.rotate_pod_stream_secret(session, pod)
    shown = {
        "title": f"New stream secret for POD {pod_id} (tokens signed with the old one are refused)",
        "stream_token_secret": secret,
        "note": "Put it into the POD's config.yaml (stream_token_secret) and restart the POD "
        "agent: until then the POD refuses the portal's tokens and its streams fail.",
    }
    return await _pods_page(request, user, db, settings, state, hub, shown=shown)


@router.post("/{pod_id}/mode")
@page
async def stream_mode(request: Request, user: AdminUser, db: Db, pod_id: Slug) -> Response:
    mode = as_stream_mode((await form_fields(request)).get("stream_mode", ""))
    if mode is None:
        allowed = ", ".join(STREAM_MODES)
        raise ApiError(422, "validation_error", f"stream mode must be one of {allowed}")
    async with db.write() as session:
        pod = await get_pod_for_user(session, user, pod_id)
        pod.stream_mode = mode
    return RedirectResponse("/pods", status_code=303)


@router.post("/enrollment-key")
@page
async def enrollment_key(
    request: Request, user: AdminUser, db: Db, settings: Settings, state: Streaming, hub: Hub
) -> Response:
    form = await form_fields(request)
    async with db.write() as session:
        site = await get_site_for_user(session, user, form.get("site_id", ""))
        _, issued = await admin.issue_enrollment_key(session, str(site.id))
        site_name = site.name
    shown = {
        "title": f"Enrollment key for site {site_name}",
        "api_key": issued.api_key,
        "note": "PODs configured with this key register themselves under this site.",
    }
    return await _pods_page(request, user, db, settings, state, hub, shown=shown)
