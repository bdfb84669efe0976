"""What users see of pods and cameras. Queries start from :mod:`platebridge.portal.scoping`;
status is the effective one (:mod:`platebridge.portal.status`). No secret, no RTSP URL."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    String,
    Uuid,
    any_,
    bindparam,
    false,
    func,
    select,
    true,
    tuple_,
    type_coerce,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from platebridge.portal.camera_media import media_item
from platebridge.portal.listing_query import (
    CAMERA_ORDER,
    DEFAULT_LIMIT,
    POD_ORDER,
    POD_TEXT,
    Filters,
    after_key,
    text_match,
)
from platebridge.portal.models import Camera, CameraStatus, Pod, Site, User, utcnow
from platebridge.portal.scoping import scoped_camera_pods, scoped_cameras, scoped_pods
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


#: The columns the camera list shows: plain rows, not ORM objects (no identity map, no
#: secrets, RTSP URLs or digests fetched). bench/listing.py: 4,000 cameras went from ~0.5 s
#: to a few tens of ms.
_LIST_COLUMNS = (
    Camera.camera_id,
    func.coalesce(Camera.display_name, Camera.name).label("name"),  # the admin's name first
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
    Camera.media,
    Camera.sub_media,
    Camera.recording,
    Pod.disk_total,
    Pod.disk_free,
)


async def _pod_id_lists(
    session: AsyncSession,
    user: User,
    filters: Filters,
    after: tuple[str, ...] | None,
    now: datetime,
) -> tuple[list[Any], list[Any], list[Any]]:
    """The ids of the company's pods the listing may reach, in listing order: all of them (for
    the count), those from the cursor's pod on (``(site name, pod_id) >= …``, for the page)
    and those whose own names match ``q`` (compared once per pod, not per camera).

    Pods first: a page then reads only the cameras of its next few pods (``cameras.pod_id =
    ANY(…)`` on PostgreSQL, ``IN (…)`` on SQLite: probes of the ``(pod_id, camera_id)`` index)
    instead of joining and sorting every camera of the company (bench/listing.py: with 4,000
    cameras in the company and 100,000 in the database, 50 ms → < 1 ms for the camera query
    on PostgreSQL). With the join alone the PostgreSQL planner also mis-estimates a company's
    share of ``cameras`` once other tenants hold most of it (a sequential scan of the table).
    The join and its company filter stay: scoping is unchanged, this only narrows it.
    """
    pods_only = Filters(site=filters.site, community=filters.community, pod_id=filters.pod_id)
    onward = tuple_(*POD_ORDER) >= tuple_(*after[:2]) if after is not None else true()
    named = text_match(filters.q, *POD_TEXT) if filters.q else false()
    # SQLite keeps UUIDs as hex text: fetched and bound back as that text (no uuid.UUID per
    # pod and page: 1,000 conversions were ~3 ms of a page)
    postgres = session.get_bind().dialect.name == "postgresql"
    pod_key = Pod.id if postgres else type_coerce(Pod.id, String)
    cols = scoped_camera_pods(user).with_only_columns(pod_key, onward, named)
    ids_stmt = pods_only.apply(cols, user, 0, now, cameras=False)
    rows = list(await session.execute(ids_stmt.order_by(*POD_ORDER)))
    return [r[0] for r in rows], [r[0] for r in rows if r[1]], [r[0] for r in rows if r[2]]


def _pods_are(pod_ids: list[Any], postgres: bool, name: str = "b_pod_ids") -> Any:
    """``cameras.pod_id`` among ``pod_ids`` (from :func:`_pod_id_lists`): one array parameter
    on PostgreSQL, the stored hex texts on SQLite."""
    if not postgres:
        return type_coerce(Camera.pod_id, String).in_(pod_ids)
    return Camera.pod_id == any_(bindparam(name, value=pod_ids, type_=postgresql.ARRAY(Uuid())))


def _in_pods(stmt: Any, pod_ids: list[Any], postgres: bool) -> Any:
    return stmt.where(_pods_are(pod_ids, postgres))


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

    ``total``: the count the first page made (carried in the cursor); without one, the first
    page counts — in the page query itself (``count(*) OVER ()``) when it reads every matching
    camera anyway (text search, ``state``), else with one count of the pods' cameras."""
    now = utcnow()
    postgres = session.get_bind().dialect.name == "postgresql"
    every_pod, onward, named = await _pod_id_lists(session, user, filters, after, now)
    q_pods = _pods_are(named, postgres, "b_q_pods") if filters.q else None
    base = filters.apply(
        scoped_cameras(user), user, offline_after, now, cameras=True, q_pods=q_pods
    )
    # Core execution, rows unpacked by position: no ORM loading, no per-row attribute lookups
    # (bench/listing.py: the Python loop over 4,000 rows was most of the request).
    conn = await session.connection()
    rows: list[Any] = []
    want = None if limit is None else limit + 1
    # A text search or a state filter reads every camera of the pods (one query, which also
    # counts); otherwise the cameras of the next pods, in chunks of pods that double (a page of
    # 4-camera pods needs one chunk of limit + 1 pods).
    reads_all = bool(filters.q or filters.state) or want is None
    window = reads_all and count and total is None and after is None and want is not None
    columns = (*_LIST_COLUMNS, func.count().over()) if window else _LIST_COLUMNS
    start, chunk = 0, len(onward) if reads_all else want or len(onward)
    while start < len(onward) and (want is None or len(rows) < want):
        ids = onward[start : start + chunk]
        start, chunk = start + chunk, chunk * 2
        stmt = after_key(_in_pods(base, ids, postgres), CAMERA_ORDER, after)
        stmt = stmt.order_by(*CAMERA_ORDER)
        if want is not None:
            stmt = stmt.limit(want - len(rows))
        rows += list(await conn.execute(stmt.with_only_columns(*columns)))
    if window:
        total = rows[0][-1] if rows else 0
        rows = [row[:-1] for row in rows]
    more = limit is not None and len(rows) > limit
    if more:
        rows = rows[:limit]
    items = await _camera_items(session, user, rows, offline_after, now, direct_url_for)
    next_key = (items[-1]["site"], items[-1]["pod_id"], items[-1]["id"]) if more else None
    if total is None:
        if not count or (after is None and not more):
            total = len(items)
        elif filters.q or filters.state or not postgres:
            # SQLite: the join (index probes per pod) beats binding every pod id (5 -> 2 ms)
            total = await _count(session, _in_pods(base, every_pod, postgres) if postgres else base)
        else:  # the other filters are on the pods' ids already, or on the camera alone
            counted = select(func.count()).select_from(Camera)
            if filters.status is not None:
                counted = counted.where(Camera.status == filters.status)
            total = await _count(session, _in_pods(counted, every_pod, postgres))
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
