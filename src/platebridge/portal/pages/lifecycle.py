"""Company admins' pages for the object lifecycle: ``/sites`` (communities and sites: create,
rename, delete) and ``/pods/{pod_id}/cameras`` (display names, removing stale cameras).

Each POST resolves its rows through ``scoping`` (another company's is the 404 page) and calls
the same services as the JSON API and the CLI; a refusal (409/422) is the page again with its
message. Every change is in the change trail (the audit page).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from sqlalchemy import select
from starlette.responses import RedirectResponse, Response

from platebridge.portal.csrf import form_fields
from platebridge.portal.db import Database
from platebridge.portal.deps import AdminUser, Db, page
from platebridge.portal.errors import ApiError
from platebridge.portal.models import Camera, User
from platebridge.portal.pages.render import render
from platebridge.portal.scoping import (
    get_camera_for_user,
    get_community_for_user,
    get_pod_for_user,
    get_site_for_user,
)
from platebridge.portal.services import camera_admin, tenancy

router = APIRouter(include_in_schema=False)
Slug = Annotated[str, Path(max_length=64)]
Id = Annotated[str, Path(max_length=64)]


async def _sites_page(
    request: Request, user: User, db: Database, *, error: str = "", status_code: int = 200
) -> Response:
    async with db.read() as session:
        communities = await tenancy.list_communities(session, user.company_id)
    return render(request, "sites.html", status_code, communities=communities, error=error)


def _again(exc: ApiError) -> str:
    if exc.status == 404:
        raise exc
    return exc.message


@router.get("/sites")
@page
async def sites_page(request: Request, user: AdminUser, db: Db) -> Response:
    return await _sites_page(request, user, db)


@router.post("/sites/communities")
@page
async def add_community(request: Request, user: AdminUser, db: Db) -> Response:
    name = (await form_fields(request)).get("name", "")
    try:
        async with db.write() as session:
            await tenancy.create_community(session, user.company_id, name, user)
    except ApiError as exc:
        return await _sites_page(request, user, db, error=_again(exc), status_code=exc.status)
    return RedirectResponse("/sites", status_code=303)


@router.post("/sites/new")
@page
async def add_site(request: Request, user: AdminUser, db: Db) -> Response:
    form = await form_fields(request)
    try:
        async with db.write() as session:
            parent = await get_community_for_user(session, user, form.get("community_id", ""))
            await tenancy.create_site(session, parent, form.get("name", ""), user)
    except ApiError as exc:
        return await _sites_page(request, user, db, error=_again(exc), status_code=exc.status)
    return RedirectResponse("/sites", status_code=303)


@router.post("/sites/communities/{community_id}/rename")
@page
async def rename_community(request: Request, user: AdminUser, db: Db, community_id: Id) -> Response:
    name = (await form_fields(request)).get("name", "")
    try:
        async with db.write() as session:
            found = await get_community_for_user(session, user, community_id)
            await tenancy.rename_community(session, found, name, user)
    except ApiError as exc:
        return await _sites_page(request, user, db, error=_again(exc), status_code=exc.status)
    return RedirectResponse("/sites", status_code=303)


@router.post("/sites/communities/{community_id}/delete")
@page
async def delete_community(request: Request, user: AdminUser, db: Db, community_id: Id) -> Response:
    try:
        async with db.write() as session:
            found = await get_community_for_user(session, user, community_id)
            await tenancy.delete_community(session, found, user)
    except ApiError as exc:
        return await _sites_page(request, user, db, error=_again(exc), status_code=exc.status)
    return RedirectResponse("/sites", status_code=303)


@router.post("/sites/{site_id}/rename")
@page
async def rename_site(request: Request, user: AdminUser, db: Db, site_id: Id) -> Response:
    name = (await form_fields(request)).get("name", "")
    try:
        async with db.write() as session:
            found = await get_site_for_user(session, user, site_id)
            await tenancy.rename_site(session, found, name, user)
    except ApiError as exc:
        return await _sites_page(request, user, db, error=_again(exc), status_code=exc.status)
    return RedirectResponse("/sites", status_code=303)


@router.post("/sites/{site_id}/delete")
@page
async def delete_site(request: Request, user: AdminUser, db: Db, site_id: Id) -> Response:
    try:
        async with db.write() as session:
            found = await get_site_for_user(session, user, site_id)
            await tenancy.delete_site(session, found, user)
    except ApiError as exc:
        return await _sites_page(request, user, db, error=_again(exc), status_code=exc.status)
    return RedirectResponse("/sites", status_code=303)


# --- a POD's cameras ---------------------------------------------------------------------


async def _cameras_page(
    request: Request,
    user: User,
    db: Database,
    pod_id: str,
    *,
    error: str = "",
    status_code: int = 200,
) -> Response:
    async with db.read() as session:
        pod = await get_pod_for_user(session, user, pod_id)
        rows = (
            await session.scalars(
                select(Camera).where(Camera.pod_id == pod.id).order_by(Camera.camera_id)
            )
        ).all()
        cameras = [] if pod.decommissioned_at else [camera_admin.camera_dict(c, pod) for c in rows]
    return render(
        request,
        "pod_cameras.html",
        status_code,
        pod=pod,
        cameras=cameras,
        error=error,
    )


@router.get("/pods/{pod_id}/cameras")
@page
async def cameras_page(request: Request, user: AdminUser, db: Db, pod_id: Slug) -> Response:
    return await _cameras_page(request, user, db, pod_id)


@router.post("/pods/{pod_id}/cameras/{camera_id}/rename")
@page
async def rename_camera(
    request: Request, user: AdminUser, db: Db, pod_id: Slug, camera_id: Slug
) -> Response:
    display_name = (await form_fields(request)).get("display_name", "")
    try:
        async with db.write() as session:
            cam, pod = await get_camera_for_user(session, user, pod_id, camera_id)
            await camera_admin.rename_camera(session, cam, pod, display_name, user)
    except ApiError as exc:
        msg = _again(exc)
        return await _cameras_page(request, user, db, pod_id, error=msg, status_code=exc.status)
    return RedirectResponse(f"/pods/{pod_id}/cameras", status_code=303)


@router.post("/pods/{pod_id}/cameras/{camera_id}/remove")
@page
async def remove_camera(
    request: Request, user: AdminUser, db: Db, pod_id: Slug, camera_id: Slug
) -> Response:
    try:
        async with db.write() as session:
            cam, pod = await get_camera_for_user(session, user, pod_id, camera_id)
            await camera_admin.remove_camera(session, cam, pod, user)
    except ApiError as exc:
        msg = _again(exc)
        return await _cameras_page(request, user, db, pod_id, error=msg, status_code=exc.status)
    return RedirectResponse(f"/pods/{pod_id}/cameras", status_code=303)
