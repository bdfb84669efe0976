"""What users see of pods and cameras. Queries start from :mod:`platebridge.portal.scoping`;
status is the effective one (:mod:`platebridge.portal.status`). No secret, no RTSP URL."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Uuid, any_, bindparam, func, or_, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from platebridge.portal.models import Camera, Pod, Site, User, utcnow
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


def _site_filter(site: str) -> Any:
    try:
        return or_(Site.id == uuid.UUID(site), Site.name == site)
    except ValueError:
        return Site.name == site


#: The columns the camera list shows: plain rows, not ORM objects (no identity map, no
#: secrets, RTSP URLs or digests fetched). bench/listing.py: 4,000 cameras went from ~0.5 s
#: to a few tens of ms.
_LIST_COLUMNS = (
    Camera.camera_id,
    Camera.name,
    Camera.stream_url,
    Camera.status,
    Camera.position,
    Camera.error,
    Pod.pod_id,
    Pod.name.label("pod_name"),
    Pod.ip_address,
    Pod.status.label("pod_reported_status"),
    Pod.last_heartbeat,
    Pod.stream_mode,
    Site.id.label("site_uuid"),
    Site.name.label("site_name"),
)


async def _with_pod_ids(session: AsyncSession, user: User, stmt: Any, pod_id: str | None) -> Any:
    """PostgreSQL: add ``cameras.pod_id = ANY(<the company's pod ids>)``.

    With the join alone, once other companies hold most of the cameras the planner estimates
    the company's 1,000 index probes into ``cameras`` (random UUID keys: no physical
    correlation) as dearer than a parallel sequential scan of the whole table + hash join,
    and the listing slows down with *other* tenants' growth (bench/listing.py: 9 ms → 82 ms
    execution at 364,000 cameras). Given the ids as one array parameter it sees ~4 rows per
    pod and probes the ``(pod_id, camera_id)`` index. The join and its company filter stay:
    scoping is unchanged, this only narrows it.
    """
    ids_stmt = scoped_pods(user).with_only_columns(Pod.id)
    if pod_id is not None:
        ids_stmt = ids_stmt.where(Pod.pod_id == pod_id)
    pod_ids = list((await session.execute(ids_stmt)).scalars())
    param = bindparam("b_pod_ids", value=pod_ids, type_=postgresql.ARRAY(Uuid()))
    return stmt.where(Camera.pod_id == any_(param))


async def list_cameras(
    session: AsyncSession,
    user: User,
    offline_after: int,
    *,
    status: str | None = None,
    pod_id: str | None = None,
    site: str | None = None,
    direct_url_for: DirectUrlSigner | None = None,
) -> list[dict[str, Any]]:
    """``direct_url_for``: in direct mode, add a tokened ``direct_url`` and ``live_url`` (the
    POD's WebSocket); other modes' ``live_url`` is the portal's live path (session-authorised)."""
    stmt = scoped_cameras(user)
    if status is not None:
        stmt = stmt.where(Camera.status == status)
    if pod_id is not None:
        stmt = stmt.where(Pod.pod_id == pod_id)
    if site is not None:
        stmt = stmt.where(_site_filter(site))
    stmt = stmt.order_by(Site.name, Pod.pod_id, Camera.camera_id)
    if session.get_bind().dialect.name == "postgresql":
        stmt = await _with_pod_ids(session, user, stmt, pod_id)
    # Core execution, rows unpacked by position: no ORM loading, no per-row attribute lookups
    # (bench/listing.py: the Python loop over 4,000 rows was most of the request).
    conn = await session.connection()
    result = await conn.execute(stmt.with_only_columns(*_LIST_COLUMNS))
    now = utcnow()
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
    ) in result:
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
    """``networks``: the allowed POD networks, to say why a pod's streams are unavailable;
    ``tunnels``: which pods have a tunnel up (``TunnelHub.connected``)."""
    stmt = scoped_pods(user)
    if pod_id is not None:
        stmt = stmt.where(Pod.pod_id == pod_id)
    if site is not None:
        stmt = stmt.where(_site_filter(site))
    stmt = stmt.order_by(Site.name, Pod.pod_id)
    rows = list(await session.execute(stmt))
    counts: dict[uuid.UUID, dict[str, int]] = {}
    if rows:
        count_stmt = (
            select(Camera.pod_id, Camera.status, func.count())
            .where(Camera.pod_id.in_([pod.id for pod, _ in rows]))
            .group_by(Camera.pod_id, Camera.status)
        )
        for pod_uuid, cam_status, n in await session.execute(count_stmt):
            counts.setdefault(pod_uuid, {})[cam_status] = n
    now = utcnow()
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
