"""The public page of a share link (``/s/{secret}``, no login): the clip, its camera and times,
or a plain message when the link is unknown, expired or revoked. The JSON and media routes of
a link are :mod:`platebridge.portal.routes.shares`."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from starlette.responses import Response

from platebridge.portal.deps import ClientIp, Db, Streaming, page, public
from platebridge.portal.errors import ApiError
from platebridge.portal.pages.render import render
from platebridge.portal.routes.shares import (
    PUBLIC_HEADERS,
    SECRET_MAX,
    audit_open,
    iso,
    opened_share,
    share_method,
)
from platebridge.portal.services import shares

router = APIRouter()


@router.get("/s/{secret}", include_in_schema=False)
@public
@page
async def share_page(
    request: Request, secret: str, db: Db, state: Streaming, ip: ClientIp
) -> Response:
    try:
        if len(secret) > SECRET_MAX:  # a page, not a JSON 422: no such link
            raise ApiError(404, "not_found", "no such share link")
        opened = await opened_share(db, secret)
    except ApiError as exc:
        message = "This share link does not exist." if exc.status == 404 else exc.message + "."
        response = render(request, "share.html", exc.status, message=message, clip_url=None)
        response.headers.update(PUBLIC_HEADERS)
        return response
    await audit_open(db, opened, share_method(state, opened.pod), ip)
    share = opened.share
    response = render(
        request,
        "share.html",
        clip_url=f"{shares.PUBLIC_PATH}{secret}/clip.mp4",
        camera=opened.camera.display_name or opened.camera.name,
        start_iso=iso(datetime.fromtimestamp(share.clip_start, UTC)),
        end_iso=iso(datetime.fromtimestamp(share.clip_end, UTC)),
        expires_iso=iso(share.expires_at),
    )
    response.headers.update(PUBLIC_HEADERS)
    return response
