"""Share links: a clip of one camera (≤ 30 min) anyone with the link may watch and download,
without logging in, until it expires (1 … 168 h, the sharer's choice) or is revoked.

* The secret is 256 random bits, ``pbs_``-prefixed (so ``core.redact`` masks it in every log
  line, the access log's request path included), shown once in the URL and stored only as its
  SHA-256 — like sessions and keys.
* A link reveals nothing but its clip: the public routes take no camera, pod or time from the
  visitor except a time *inside* the clip, and sign the POD-side token for the clip's range.
* It lives only as long as its creator may share: a creator deleted, disabled or demoted to a
  role without the ``share`` capability voids their links (410), as a disabled user's stream
  tokens are void.
* Creating, revoking and every open are audited (``share_created``, ``share_revoked``,
  ``share_opened``: the share's id, the clip's range, the visitor's address).
"""

from __future__ import annotations

import math
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from platebridge.portal.errors import ApiError
from platebridge.portal.models import AuditEvent, Camera, Pod, ShareLink, User, utcnow
from platebridge.portal.scoping import can, get_camera_for_user, require_capability
from platebridge.portal.security import token_hash
from platebridge.portal.services.audit import Action, Method

SECRET_PREFIX = "pbs_"  # noqa: S105 - a prefix, not a secret
#: Expiry the sharer may choose, hours (7 days at most).
MIN_HOURS, MAX_HOURS = 1, 168
#: A clip is a download: at most the POD's export length, at least one second.
MAX_CLIP, MIN_CLIP = 1800.0, 1.0
PUBLIC_PATH = "/s/"
_SECRET_SHAPE = re.compile(r"pbs_[A-Za-z0-9_-]{40,50}")


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "bad_request", message)


def check_clip(start: float, end: float) -> tuple[float, float]:
    """A clip range: finite epoch seconds, ``MIN_CLIP <= end - start <= MAX_CLIP``, else 400."""
    for name, value in (("from", start), ("to", end)):
        if not math.isfinite(value) or not 0 <= value <= 1e10:
            raise bad_request(f"{name} must be epoch seconds")
    if not end - start >= MIN_CLIP:
        raise bad_request("to must be at least one second after from")
    if end - start > MAX_CLIP:
        raise bad_request(f"a shared clip may last at most {MAX_CLIP:.0f} s")
    return start, end


def check_hours(hours: int) -> int:
    if not MIN_HOURS <= hours <= MAX_HOURS:
        raise bad_request(f"expires_in_hours must be {MIN_HOURS} to {MAX_HOURS}")
    return hours


def share_event(
    share: ShareLink,
    camera: Camera,
    pod: Pod,
    action: Action,
    method: Method,
    ip: str | None,
    user: User | None = None,
) -> AuditEvent:
    """An audit row about ``share`` (``user``: the actor; None: an anonymous visitor)."""
    return AuditEvent(
        company_id=share.company_id,
        at=utcnow(),
        user_id=user.id if user else None,
        user_email=user.email if user else None,
        pod_id=pod.pod_id,
        camera_id=camera.camera_id,
        action=action,
        method=method,
        client_ip=(ip or None) and ip[:45],
        range_start=share.clip_start,
        range_end=share.clip_end,
        share_id=share.id,
    )


@dataclass(frozen=True, slots=True)
class Created:
    share: ShareLink
    camera: Camera
    pod: Pod
    secret: str


async def create_share(
    session: AsyncSession,
    user: User,
    pod_id: str,
    camera_id: str,
    start: float,
    end: float,
    hours: int,
) -> Created:
    """A new link (404 outside the user's company, 403 without ``share``, 400 bad values)."""
    camera, pod = await get_camera_for_user(session, user, pod_id, camera_id)
    require_capability(user, "share")
    start, end = check_clip(start, end)
    now = utcnow()
    secret = new_secret()
    share = ShareLink(
        id=uuid.uuid4(),
        secret_hash=token_hash(secret),
        company_id=user.company_id,
        camera_id=camera.id,
        clip_start=start,
        clip_end=end,
        created_by=user.id,
        created_by_email=user.email,
        created_at=now,
        expires_at=now + timedelta(hours=check_hours(hours)),
    )
    session.add(share)
    return Created(share, camera, pod, secret)


def _state(share: ShareLink, now: datetime) -> str:
    if share.revoked_at is not None:
        return "revoked"
    return "expired" if share.expires_at <= now else "active"


def share_json(share: ShareLink, camera: Camera, pod: Pod, now: datetime) -> dict[str, Any]:
    """What the API shows of a link: never its secret or URL (shown once, at creation)."""
    return {
        "id": str(share.id),
        "pod_id": pod.pod_id,
        "camera_id": camera.camera_id,
        "from": share.clip_start,
        "to": share.clip_end,
        "created_at": share.created_at.isoformat(),
        "created_by": share.created_by_email,
        "expires_at": share.expires_at.isoformat(),
        "revoked_at": share.revoked_at.isoformat() if share.revoked_at else None,
        "state": _state(share, now),
    }


def _company_shares(user: User) -> Any:
    return (
        select(ShareLink, Camera, Pod)
        .join(Camera, Camera.id == ShareLink.camera_id)
        .join(Pod, Pod.id == Camera.pod_id)
        .where(ShareLink.company_id == user.company_id, Pod.company_id == user.company_id)
    )


async def list_shares(session: AsyncSession, user: User, limit: int = 500) -> list[dict[str, Any]]:
    """The company's links, newest first (any user with ``share`` sees them all, to revoke)."""
    require_capability(user, "share")
    stmt = _company_shares(user).order_by(ShareLink.created_at.desc()).limit(limit)
    now = utcnow()
    rows = (await session.execute(stmt)).all()
    return [share_json(row[0], row[1], row[2], now) for row in rows]


async def get_share(
    session: AsyncSession, user: User, share_id: str
) -> tuple[ShareLink, Camera, Pod]:
    """The company's link by id, or 404 (other companies' and malformed ids alike)."""
    try:
        wanted = uuid.UUID(share_id)
    except ValueError:
        raise ApiError(404, "not_found", "share link not found") from None
    row = (await session.execute(_company_shares(user).where(ShareLink.id == wanted))).first()
    if row is None:
        raise ApiError(404, "not_found", "share link not found")
    require_capability(user, "share")
    return row[0], row[1], row[2]


async def revoke_share(
    session: AsyncSession, user: User, share_id: str
) -> tuple[ShareLink, Camera, Pod, bool]:
    """Revoke the link (idempotent); the last value: whether this call revoked it."""
    share, camera, pod = await get_share(session, user, share_id)
    if share.revoked_at is not None:
        return share, camera, pod, False
    share.revoked_at = utcnow()
    return share, camera, pod, True


@dataclass(frozen=True, slots=True)
class Opened:
    """A live link: its clip, camera and pod, and the creator the viewing runs as."""

    share: ShareLink
    camera: Camera
    pod: Pod
    creator: User


def _gone(message: str) -> ApiError:
    return ApiError(410, "share_gone", message)


async def open_share(session: AsyncSession, secret: str) -> Opened:
    """The link of ``secret``: 404 unknown, 410 expired, revoked or voided by its creator."""
    if not _SECRET_SHAPE.fullmatch(secret):
        raise ApiError(404, "not_found", "share link not found")
    row = (
        await session.execute(
            select(ShareLink, Camera, Pod)
            .join(Camera, Camera.id == ShareLink.camera_id)
            .join(Pod, Pod.id == Camera.pod_id)
            .where(ShareLink.secret_hash == token_hash(secret))
        )
    ).first()
    if row is None:
        raise ApiError(404, "not_found", "share link not found")
    share, camera, pod = row[0], row[1], row[2]
    if share.revoked_at is not None:
        raise _gone("this share link was revoked")
    if share.expires_at <= utcnow():
        raise _gone("this share link has expired")
    creator = await session.get(User, share.created_by) if share.created_by else None
    if (
        creator is None
        or creator.disabled_at is not None
        or creator.company_id != share.company_id
        or not can(creator, "share")
        or pod.company_id != share.company_id
        or pod.decommissioned_at is not None
    ):
        raise _gone("this share link is no longer valid")
    return Opened(share, camera, pod, creator)
