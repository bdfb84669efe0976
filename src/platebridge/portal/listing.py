"""What users see of pods and cameras. Queries start from :mod:`platebridge.portal.scoping`;
status is the effective one (:mod:`platebridge.portal.status`). No secret, no RTSP URL."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from platebridge.portal.camera_media import media_item
from platebridge.portal.listing_query import (
    DEFAULT_LIMIT,
    POD_ORDER,
    CountMode,
    Filters,
    after_key,
    camera_page_query,
)
from platebridge.portal.models import Camera, CameraStatus, Pod, User, utcnow
from platebridge.portal.scoping import scoped_cameras, scoped_pods
from platebridge.portal.status import camera_streamable, effective_pod_status
from platebridge.portal.streaming.live import live_path
from platebridge.portal.streaming.select import proxy_refusal
from platebridge.portal.streaming.ssrf import AddressRefused, IPNetwork, network_kind

#: Signs a direct-mode camera's URLs: ``(direct_url, live_url)`` (``None``: none for it).
DirectUrlSigner = Callable[[Camera, Pod], tuple[str, str | None] | None]


def _network(ip: str | None) -> str | None:
    if not ip:
        return None
    try:
        return network_kind(ip)
    except AddressRefused:
        return None


def _unavailable_reason(pod: Pod, networks: tuple[IPNetwork, ...] | None) -> str | None:
    """Why the portal cannot proxy this pod's streams (proxy mode only), else None."""
    if pod.stream_mode != "proxy" or networks is None:
        return None
    return proxy_refusal(pod, networks)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass(slots=True)
class Page:
    """One page of a listing: its rows, the sort key to continue after (None: the end) and
    how many rows the whole filtered listing holds."""

    items: list[dict[str, Any]]
    next_key: tuple[str, ...] | None
    total: int


async def _count(session: AsyncSession, stmt: Any) -> int:
    n = await session.scalar(stmt.with_only_columns(func.count()).order_by(None))
    return int(n or 0)


async def camera_page(
    session: AsyncSession,
    user: User,
    offline_after: int,
    filters: Filters,
    *,
    after: tuple[str, ...] | None = None,
    total: int | None = None,
    limit: int | None = DEFAULT_LIMIT,
    count: bool = True,
    direct_url_for: DirectUrlSigner | None = None,
) -> Page:
    """Cameras after ``after`` (a sort key: site name, pod_id, camera_id), at most ``limit``
    (None: all, for internal callers). ``direct_url_for``: in direct mode, add a tokened
    ``direct_url`` and ``live_url`` (the POD's WebSocket); other modes' ``live_url`` is the
    portal's live path (session-authorised). Only the rows returned are signed.

    One statement per page (``listing_query.camera_page_statement``: the pods first, as a
    subquery, then their cameras). ``total``: the count the first page made (carried in the
    cursor); without one, the first page counts inside that statement — ``count(*) OVER ()``
    when it reads every matching camera anyway (text search, ``state``), else a per-pod sum.
    bench/listing.py, PostgreSQL, 100,000 cameras: three queries and 1,000 pod ids through
    Python per page (4.8-7.6 ms in-process) became this one statement."""
    now = utcnow()
    want = None if limit is None else limit + 1
    reads_all = bool(filters.q or filters.state) or want is None
    counting = count and total is None and after is None and want is not None
    mode: CountMode = "none" if not counting else "window" if reads_all else "pods"
    cutoff = now - timedelta(seconds=offline_after)
    lateral = session.get_bind().dialect.name == "postgresql"
    stmt, params = camera_page_query(
        filters, user.company_id, cutoff, after, want, mode, lateral=lateral
    )
    # Core execution, rows unpacked by position: no ORM loading, no per-row attribute lookups
    # (bench/listing.py: the Python loop over 4,000 rows was most of the request).
    conn = await session.connection()
    rows: list[Any] = list(await conn.execute(stmt, params))
    if mode != "none":
        total = int(rows[0][-1] or 0) if rows else 0
        rows = [row[:-1] for row in rows]
    more = limit is not None and len(rows) > limit
    if more:
        rows = rows[:limit]
    items = await _camera_items(session, user, rows, offline_after, now, direct_url_for)
    next_key = (items[-1]["site"], items[-1]["pod_id"], items[-1]["id"]) if more else None
    if total is None:  # not counted: internal callers, or a later page without a total
        if not count or (after is None and not more):
            total = len(items)
        else:
            every, params = camera_page_query(
                filters, user.company_id, cutoff, None, None, "none", lateral=lateral
            )
            counted = select(func.count()).select_from(every.subquery())
            total = int(await session.scalar(counted, params) or 0)
    return Page(items, next_key, total)


async def list_cameras(
    session: AsyncSession,
    user: User,
    offline_after: int,
    *,
    status: CameraStatus | None = None,
    pod_id: str | None = None,
    site: str | None = None,
    direct_url_for: DirectUrlSigner | None = None,
) -> list[dict[str, Any]]:
    """Every camera (no page) matching the filters: internal callers only (one pod's cameras
    for the live page, the CLI); the API pages (:func:`camera_page`)."""
    filters = Filters(site=site, pod_id=pod_id, status=status)
    page = await camera_page(
        session,
        user,
        offline_after,
        filters,
        limit=None,
        count=False,
        direct_url_for=direct_url_for,
    )
    return page.items


async def _camera_items(
    session: AsyncSession,
    user: User,
    rows: list[Any],
    offline_after: int,
    now: datetime,
    direct_url_for: DirectUrlSigner | None,
) -> list[dict[str, Any]]:
    # Keyed by the wire pod_id (unique within the one company listed): the pod's and camera's
    # UUIDs are not fetched (a UUID result conversion per row and column).
    pods: dict[str, tuple[str, str | None, str]] = {}  # → (status, iso time, site id)
    out: list[dict[str, Any]] = []
    to_sign: dict[tuple[str, str], dict[str, Any]] = {}
    signing = direct_url_for is not None
    for (
        camera_id,
        name,
        stream_url,
        cam_status,
        position,
        error,
        wire_pod_id,
        pod_name,
        ip_address,
        reported,
        last_heartbeat,
        stream_mode,
        site_uuid,
        site_name,
        media,
        sub_media,
        recording,
        disk_total,
        disk_free,
    ) in rows:
        pod_info = pods.get(wire_pod_id)
        if pod_info is None:
            pod_status = effective_pod_status(reported, last_heartbeat, offline_after, now)
            pod_info = pods[wire_pod_id] = (pod_status, _iso(last_heartbeat), str(site_uuid))
        streamable = camera_streamable(cam_status, pod_info[0])
        item = {
            "id": camera_id,
            "name": name,
            "stream_url": stream_url,
            "status": cam_status,
            "pod_id": wire_pod_id,
            "pod_name": pod_name,
            "pod_ip": ip_address,
            "position": position,
            "pod_status": pod_info[0],
            "streamable": streamable,
            "stream_mode": stream_mode,
            "direct_url": None,
            "live_url": None
            if stream_mode == "direct"
            else live_path(wire_pod_id, camera_id, None),
            "error": error,
            "site": site_name,
            "site_id": pod_info[2],
            "last_heartbeat": pod_info[1],
            "media": media_item(media),
            "sub_media": media_item(sub_media),
            "recording": media_item(recording),
            "pod_disk": None
            if disk_total is None
            else {"total": disk_total, "free": disk_free or 0},
        }
        out.append(item)
        if signing and streamable and stream_mode == "direct":
            to_sign[(wire_pod_id, camera_id)] = item
    if to_sign and direct_url_for is not None:
        # Only direct-mode cameras need the full rows (the signer reads the pod's secret).
        full = scoped_cameras(user).where(Pod.pod_id.in_(sorted({p for p, _ in to_sign})))
        objs = {
            (pod.pod_id, cam.camera_id): (cam, pod) for cam, pod, _ in await session.execute(full)
        }
        for key, item in to_sign.items():  # in listing order (the audit trail's order)
            urls = direct_url_for(*objs[key]) if key in objs else None
            if urls is not None:
                item["direct_url"], item["live_url"] = urls
    return out


async def pod_page(
    session: AsyncSession,
    user: User,
    offline_after: int,
    filters: Filters,
    *,
    after: tuple[str, ...] | None = None,
    total: int | None = None,
    limit: int | None = DEFAULT_LIMIT,
    count: bool = True,
    networks: tuple[IPNetwork, ...] | None = None,
    tunnels: Callable[[list[uuid.UUID]], Awaitable[set[uuid.UUID]]] | None = None,
) -> Page:
    """Pods after ``after`` (site name, pod_id). ``networks``: the allowed POD networks, to say
    why a pod's streams are unavailable; ``tunnels``: which pods have a tunnel up
    (``TunnelHub.connected``)."""
    now = utcnow()
    base = filters.apply(scoped_pods(user), user, offline_after, now, cameras=False)
    stmt = after_key(base, POD_ORDER, after).order_by(*POD_ORDER)
    if limit is not None:
        stmt = stmt.limit(limit + 1)
    rows = list(await session.execute(stmt))
    more = limit is not None and len(rows) > limit
    if more:
        rows = rows[:limit]
    items = await _pod_items(session, rows, offline_after, now, networks, tunnels)
    next_key = (items[-1]["site"], items[-1]["pod_id"]) if more else None
    if total is None:
        total = await _count(session, base) if count and (after or more) else len(items)
    return Page(items, next_key, total)


async def list_pods(
    session: AsyncSession,
    user: User,
    offline_after: int,
    *,
    site: str | None = None,
    pod_id: str | None = None,
    networks: tuple[IPNetwork, ...] | None = None,
    tunnels: Callable[[list[uuid.UUID]], Awaitable[set[uuid.UUID]]] | None = None,
) -> list[dict[str, Any]]:
    """Every pod (no page) matching the filters: internal callers (pages, CLI, one pod)."""
    page = await pod_page(
        session,
        user,
        offline_after,
        Filters(site=site, pod_id=pod_id),
        limit=None,
        count=False,
        networks=networks,
        tunnels=tunnels,
    )
    return page.items


async def _pod_items(
    session: AsyncSession,
    rows: list[Any],
    offline_after: int,
    now: datetime,
    networks: tuple[IPNetwork, ...] | None,
    tunnels: Callable[[list[uuid.UUID]], Awaitable[set[uuid.UUID]]] | None,
) -> list[dict[str, Any]]:
    counts: dict[uuid.UUID, dict[str, int]] = {}
    if rows:
        count_stmt = (
            select(Camera.pod_id, Camera.status, func.count())
            .where(Camera.pod_id.in_([pod.id for pod, _ in rows]))
            .group_by(Camera.pod_id, Camera.status)
        )
        for pod_uuid, cam_status, n in await session.execute(count_stmt):
            counts.setdefault(pod_uuid, {})[cam_status] = n
    up = await tunnels([pod.id for pod, _ in rows]) if tunnels is not None and rows else set()
    out = []
    for pod, site_row in rows:
        c = counts.get(pod.id, {})
        out.append(
            {
                "pod_id": pod.pod_id,
                "name": pod.name,
                "status": effective_pod_status(pod.status, pod.last_heartbeat, offline_after, now),
                "ip_address": pod.ip_address,
                "stream_port": pod.stream_port,
                "stream_mode": pod.stream_mode,
                "network": _network(pod.ip_address),
                "unavailable_reason": _unavailable_reason(pod, networks),
                "tunnel_connected": pod.id in up,
                "firmware_version": pod.firmware_version,
                "last_heartbeat": _iso(pod.last_heartbeat),
                "site": site_row.name,
                "site_id": str(site_row.id),
                "cameras": {
                    "total": sum(c.values()),
                    "active": c.get("active", 0),
                    "inactive": c.get("inactive", 0),
                    "error": c.get("error", 0),
                },
            }
        )
    return out
