"""Admin forms of the PODs page. Each POST calls the same services as the CLI
(``services.pod_lifecycle``) after resolving its pod/site through ``scoping`` (404 outside the
company); secrets are shown once on the answering page (``Cache-Control: no-store``). Every
change is in the company's change trail (the audit page)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from sqlalchemy import select
from starlette.responses import RedirectResponse, Response

from platebridge.portal.csrf import form_fields
from platebridge.portal.db import Database
from platebridge.portal.deps import AdminUser, CurrentUser, Db, Hub, Settings, Streaming, page
from platebridge.portal.errors import ApiError
from platebridge.portal.listing import list_pods
from platebridge.portal.models import STREAM_MODES, Pod, Site, User, as_stream_mode
from platebridge.portal.pages.render import render
from platebridge.portal.routes.pod_admin import close_tunnel
from platebridge.portal.scoping import get_pod_for_user, get_site_for_user, scoped_sites
from platebridge.portal.services import admin, pod_lifecycle, tenancy
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
        decommissioned = set(
            (
                await session.scalars(
                    select(Pod.pod_id).where(
                        Pod.company_id == user.company_id, Pod.decommissioned_at.is_not(None)
                    )
                )
            ).all()
        )
    return render(
        request,
        "pods.html",
        status_code,
        no_store=shown is not None,
        pods=pods,
        sites=sites,
        decommissioned=decommissioned,
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
            created = await pod_lifecycle.create_pod(
                session, site, form.get("pod_id", "").strip(), form.get("name") or None, user
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
    except ApiError as exc:
        if exc.status == 404:
            raise
        return await _pods_page(
            request, user, db, settings, state, hub, error=exc.message, status_code=400
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
        issued = await pod_lifecycle.rotate_key(session, pod, user)
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
        secret = await pod_lifecycle.rotate_secret(session, pod, user)
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
        await pod_lifecycle.set_stream_mode(session, pod, mode, user)
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
        tenancy.record_enrollment_key(session, site, issued.key.id, user)
        site_name = site.name
    shown = {
        "title": f"Enrollment key for site {site_name}",
        "api_key": issued.api_key,
        "note": "PODs configured with this key register themselves under this site.",
    }
    return await _pods_page(request, user, db, settings, state, hub, shown=shown)


# --- lifecycle: rename, move, decommission, re-enable, delete ---------------------------------


async def _refused(
    request: Request,
    user: User,
    db: Database,
    settings: PortalSettings,
    state: StreamingState,
    hub: TunnelHub,
    exc: ApiError,
) -> Response:
    """A refusal (409/422) as the PODs page with its message; 404 stays the error page."""
    if exc.status == 404:
        raise exc
    return await _pods_page(
        request, user, db, settings, state, hub, error=exc.message, status_code=exc.status
    )


@router.post("/{pod_id}/rename")
@page
async def rename(
    request: Request,
    user: AdminUser,
    db: Db,
    settings: Settings,
    state: Streaming,
    hub: Hub,
    pod_id: Slug,
) -> Response:
    name = (await form_fields(request)).get("name", "")
    try:
        async with db.write() as session:
            pod = await get_pod_for_user(session, user, pod_id)
            await pod_lifecycle.rename_pod(session, pod, name, user)
    except ApiError as exc:
        return await _refused(request, user, db, settings, state, hub, exc)
    return RedirectResponse("/pods", status_code=303)


@router.post("/{pod_id}/move")
@page
async def move(
    request: Request,
    user: AdminUser,
    db: Db,
    settings: Settings,
    state: Streaming,
    hub: Hub,
    pod_id: Slug,
) -> Response:
    site_id = (await form_fields(request)).get("site_id", "")
    async with db.write() as session:
        pod = await get_pod_for_user(session, user, pod_id)
        site = await get_site_for_user(session, user, site_id)  # another company's: 404
        _, note = await pod_lifecycle.move_pod(session, pod, site, user)
    if note:
        return await _pods_page(request, user, db, settings, state, hub, error=note)
    return RedirectResponse("/pods", status_code=303)


@router.post("/{pod_id}/decommission")
@page
async def decommission(
    request: Request,
    user: AdminUser,
    db: Db,
    settings: Settings,
    state: Streaming,
    hub: Hub,
    pod_id: Slug,
) -> Response:
    confirm = (await form_fields(request)).get("confirm", "").strip()
    try:
        async with db.write() as session:
            pod = await get_pod_for_user(session, user, pod_id)
            if confirm != pod.pod_id:
                raise ApiError(
                    422,
                    "confirmation_required",
                    f"type the POD id {pod.pod_id!r} to confirm decommissioning it",
                )
            await pod_lifecycle.decommission(session, pod, user)
            pod_uuid = pod.id
    except ApiError as exc:
        return await _refused(request, user, db, settings, state, hub, exc)
    close_tunnel(hub, pod_uuid)
    return RedirectResponse("/pods", status_code=303)


@router.post("/{pod_id}/enable")
@page
async def enable(
    request: Request,
    user: AdminUser,
    db: Db,
    settings: Settings,
    state: Streaming,
    hub: Hub,
    pod_id: Slug,
) -> Response:
    try:
        async with db.write() as session:
            pod = await get_pod_for_user(session, user, pod_id)
            creds = await pod_lifecycle.reenable(session, pod, user)
    except ApiError as exc:
        return await _refused(request, user, db, settings, state, hub, exc)
    shown = {
        "title": f"POD {pod_id} re-enabled: its new key and stream secret",
        "api_key": creds.api_key,
        "stream_token_secret": creds.stream_token_secret,
        "config_yaml": render_pod_config(
            pod_id, portal_url(request), creds.api_key, creds.stream_token_secret
        ),
        "note": "Put them into the POD's config.yaml and restart the POD agent; its cameras "
        "come back with its next heartbeat.",
    }
    return await _pods_page(request, user, db, settings, state, hub, shown=shown)


@router.post("/{pod_id}/delete")
@page
async def delete(
    request: Request,
    user: AdminUser,
    db: Db,
    settings: Settings,
    state: Streaming,
    hub: Hub,
    pod_id: Slug,
) -> Response:
    try:
        async with db.write() as session:
            pod = await get_pod_for_user(session, user, pod_id)
            await pod_lifecycle.delete_pod(session, pod, user)
    except ApiError as exc:
        return await _refused(request, user, db, settings, state, hub, exc)
    return RedirectResponse("/pods", status_code=303)
