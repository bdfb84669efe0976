"""What a scrape adds to the process metrics: fleet totals read from the database at scrape
time (pods online/offline, cameras by status, alert deliveries by state — three ``GROUP BY``
counts, not a row per pod) and the pool's size; and the rendering of it all."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import case, column, func, select, table

from platebridge.portal.db import Database
from platebridge.portal.metrics import instruments as m
from platebridge.portal.metrics.pool import pool_size
from platebridge.portal.metrics.viewers import HLS_VIEWERS
from platebridge.portal.models import Camera, Pod, utcnow

POD_STATUSES = ("online", "error", "offline")
CAMERA_STATUSES = ("active", "inactive", "error")
DELIVERY_STATES = ("pending", "delivered", "failed")
#: Table alert_deliveries (portal/alerts/models.py), named here so that metrics does not import
#: the alerts package (which imports streaming, which reports to metrics: a cycle).
_DELIVERIES = table("alert_deliveries", column("state"))


@dataclass
class Fleet:
    """The totals of one scrape (every company's together: no per-pod or per-tenant labels)."""

    pods: dict[str, int] = field(default_factory=dict)
    cameras: dict[str, int] = field(default_factory=dict)
    deliveries: dict[str, int] | None = None
    pool_size: int | None = None


async def read_fleet(db: Database, offline_after: int) -> Fleet:
    """Three aggregate queries. A pod is what ``status.effective_pod_status`` says: offline
    without a heartbeat in ``offline_after`` seconds; decommissioned pods are not counted."""
    cutoff = utcnow() - timedelta(seconds=offline_after)
    fresh = case((Pod.last_heartbeat >= cutoff, 1), else_=0).label("fresh")
    fleet = Fleet(
        pods=dict.fromkeys(POD_STATUSES, 0),
        cameras=dict.fromkeys(CAMERA_STATUSES, 0),
        pool_size=pool_size(db.engine),
    )
    retired_flag = case((Pod.decommissioned_at.is_(None), 0), else_=1).label("retired")
    async with db.read() as session:
        rows = await session.execute(
            select(Pod.status, fresh, retired_flag, func.count()).group_by(
                Pod.status, fresh, retired_flag
            )
        )
        retired_pods = 0
        for status, is_fresh, is_retired, count in rows:
            if is_retired:
                retired_pods += count
                continue
            known = status if status in POD_STATUSES else "online"
            fleet.pods[known if is_fresh else "offline"] += count
        # All cameras, less those of decommissioned pods (when there are any; the (pod_id,
        # status) index): a join with every pod cost 27 ms at 40,000 cameras on SQLite.
        retired = select(Pod.id).where(Pod.decommissioned_at.is_not(None))
        wheres = [None, Camera.pod_id.in_(retired)] if retired_pods else [None]
        for sign, where in zip((1, -1), wheres, strict=False):
            query = select(Camera.status, func.count()).group_by(Camera.status)
            rows = await session.execute(query if where is None else query.where(where))
            for status, count in rows:
                if status in fleet.cameras:
                    fleet.cameras[status] += sign * count
        rows = await session.execute(
            select(_DELIVERIES.c.state, func.count()).group_by(_DELIVERIES.c.state)
        )
        fleet.deliveries = dict.fromkeys(DELIVERY_STATES, 0)
        for state, count in rows:
            if state in fleet.deliveries:
                fleet.deliveries[state] += count
    return fleet


class _FleetCollector(Collector):
    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet

    def collect(self) -> Iterator[Metric]:
        prefix, f = m.PREFIX, self.fleet
        pods = GaugeMetricFamily(
            prefix + "pods",
            "Pods in service by effective status (online, error, offline).",
            labels=["status"],
        )
        for status, count in f.pods.items():
            pods.add_metric([status], count)
        yield pods
        cameras = GaugeMetricFamily(
            prefix + "cameras", "Cameras of pods in service, by status.", labels=["status"]
        )
        for status, count in f.cameras.items():
            cameras.add_metric([status], count)
        yield cameras
        if f.deliveries is not None:
            deliveries = GaugeMetricFamily(
                prefix + "alert_deliveries",
                "Alert notices in table alert_deliveries by state (pending, delivered, failed).",
                labels=["state"],
            )
            for state, count in f.deliveries.items():
                deliveries.add_metric([state], count)
            yield deliveries
        if f.pool_size is not None:
            yield GaugeMetricFamily(
                prefix + "db_pool_size",
                "Configured size of the answering process's database pool.",
                value=f.pool_size,
            )


class _Process(Collector):
    """This process's own metrics (no multiprocess directory)."""

    def collect(self) -> Iterator[Metric]:
        yield from m.REGISTRY.collect()


def _render_process() -> bytes:
    """Every process's metrics (multiprocess) or this one's. Thread-safe: the library locks
    each value while reading it."""
    registry = CollectorRegistry(auto_describe=False)
    path = m.multiprocess_dir()
    if path is not None:
        MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
    else:
        registry.register(_Process())
    return generate_latest(registry)


def _render_fleet(fleet: Fleet) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_FleetCollector(fleet))
    return generate_latest(registry)


def render(fleet: Fleet) -> bytes:
    """The exposition text: every process's metrics (multiprocess) or this one's, the fleet."""
    HLS_VIEWERS.refresh()  # players gone quiet leave the gauge now, not at the next playlist
    return _render_process() + _render_fleet(fleet)


async def scrape(db: Database, offline_after: int) -> bytes:
    """What ``GET /metrics`` answers: :func:`render` of :func:`read_fleet`, with the process
    metrics rendered in a worker thread while the fleet queries wait on the database.

    Rendering ~1,600 series is ~15 ms of pure Python (prometheus_client formats each sample):
    on the event loop it held up every other request of the process (heartbeats) for that
    long, and it came on top of the queries' ~20 ms (bench/metrics.py).
    """
    HLS_VIEWERS.refresh()  # on the loop: the players' table is the loop's
    process = asyncio.ensure_future(asyncio.to_thread(_render_process))
    try:
        fleet = await read_fleet(db, offline_after)
    finally:
        text = await process  # a thread cannot be cancelled: it finishes either way
    return text + _render_fleet(fleet)
