"""The periodic evaluation pass: observe, evaluate, write incidents and enqueue their notices.

Every portal process runs the loop; each pass is one write transaction, and only one process
runs a pass at a time (PostgreSQL: a transaction-scoped advisory lock taken without waiting, so
the others skip that round; SQLite: ``BEGIN IMMEDIATE`` makes write transactions exclusive).
The notices are rows written in the same transaction as the incident change (an outbox), so a
process dying mid-pass loses or doubles nothing: the whole pass is rolled back and redone.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from platebridge.core.aio import within
from platebridge.portal.alerts.enqueue import NoticeWriter
from platebridge.portal.alerts.evaluate import Incident, Plan, Subject, evaluate
from platebridge.portal.alerts.models import AlertIncident
from platebridge.portal.alerts.observe import Holders, World, observe
from platebridge.portal.db import Database, insert_rows
from platebridge.portal.models import new_uuid, utcnow
from platebridge.portal.settings import PortalSettings

log = logging.getLogger(__name__)

#: pg_try_advisory_xact_lock key of the evaluation pass ("alerts").
_PG_PASS_LOCK = 0x616C65727473


@dataclass(frozen=True, slots=True)
class PassResult:
    """What one pass did (for logs, tests and the benchmark)."""

    pods: int
    cameras: int
    holding: int
    written: int
    dropped: int
    opened: int
    resolved: int
    notices: int
    seconds: float


_INCIDENTS = cast(Table, AlertIncident.__table__)
#: The columns a pass changes on an incident it keeps.
_MUTABLE = (
    "state",
    "open_key",
    "first_seen",
    "last_seen",
    "opened_at",
    "clear_since",
    "resolved_at",
    "count",
    "detail",
)
_UPDATE_BY_ID = (
    update(_INCIDENTS)
    .where(_INCIDENTS.c.id == bindparam("b_id"))
    .values({name: bindparam(f"b_{name}") for name in _MUTABLE})
)
#: Rows per multi-row INSERT / DELETE statement.
_CHUNK = 1000


def _mutable(incident: Incident) -> dict[str, Any]:
    return {
        "state": incident.state,
        "open_key": None if incident.state == "resolved" else incident.subject.key,
        "first_seen": incident.first_seen,
        "last_seen": incident.last_seen,
        "opened_at": incident.opened_at,
        "clear_since": incident.clear_since,
        "resolved_at": incident.resolved_at,
        "count": incident.count,
        "detail": incident.detail,
    }


async def _live_incidents(session: AsyncSession, world: World) -> dict[str, Incident]:
    """Every pending and open incident, by ``open_key`` (columns, not ORM objects: a pass
    over thousands of open incidents builds no identity map)."""
    c = _INCIDENTS.c
    rows = await session.execute(
        select(
            c.open_key,
            c.id,
            c.company_id,
            c.kind,
            c.pod_id,
            c.camera_id,
            c.state,
            c.first_seen,
            c.last_seen,
            c.opened_at,
            c.clear_since,
            c.resolved_at,
            c.count,
            c.detail,
        ).where(c.open_key.is_not(None))
    )
    live: dict[str, Incident] = {}
    for row in rows:
        if not row.open_key:
            continue
        live[row.open_key] = Incident(
            subject=Subject(row.kind, row.pod_id, row.camera_id),
            company_id=row.company_id,
            state=row.state,
            first_seen=row.first_seen,
            last_seen=row.last_seen,
            recover_after=world.rules_of(row.company_id).recover_after,
            id=row.id,
            opened_at=row.opened_at,
            clear_since=row.clear_since,
            resolved_at=row.resolved_at,
            count=row._mapping["count"],
            detail=row.detail,
        )
    return live


async def _write_plan(session: AsyncSession, plan: Plan) -> dict[str, Incident]:
    """Write the plan's incidents (new ones get their id here) and drop its dropped ones, in
    a few executemany / multi-row statements; returns the written incidents by key."""
    written: dict[str, Incident] = {}
    new_rows: list[dict[str, Any]] = []
    changed_rows: list[dict[str, Any]] = []
    for incident in plan.upserts:
        if incident.id is None:
            incident = replace(incident, id=new_uuid())
            subject = incident.subject
            new_rows.append(
                {
                    "id": incident.id,
                    "company_id": incident.company_id,
                    "kind": subject.kind,
                    "pod_id": subject.pod_id,
                    "camera_id": subject.camera_id,
                    **_mutable(incident),
                }
            )
        else:
            values = _mutable(incident)
            changed_rows.append({"b_id": incident.id, **{f"b_{k}": v for k, v in values.items()}})
        written[incident.subject.key] = incident
    if changed_rows:
        await session.execute(_UPDATE_BY_ID, changed_rows)
    dropped = [incident.id for incident in plan.drops if incident.id is not None]
    for i in range(0, len(dropped), _CHUNK):
        chunk = dropped[i : i + _CHUNK]
        await session.execute(delete(_INCIDENTS).where(_INCIDENTS.c.id.in_(chunk)))
    await insert_rows(session, _INCIDENTS, new_rows)
    return written


@contextlib.contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a pass runs (refcounting still frees everything).

    A pass over 10,000 pods holds ~50,000 fetched rows and their observations until it ends;
    as they pile up, the collector ran 3 full collections per pass, each traversing the whole
    heap (100-150 ms each: a third of the onset pass, bench/alerts.py). The pass makes no
    reference cycles worth collecting mid-pass; collection resumes right after it.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


async def _take_pass_lock(session: AsyncSession) -> bool:
    if session.get_bind().dialect.name != "postgresql":
        return True  # SQLite: this write transaction is already exclusive
    result = await session.execute(
        text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": _PG_PASS_LOCK}
    )
    return bool(result.scalar())


class AlertRunner:
    """Runs :meth:`run_pass` every ``settings.alert_check_interval`` seconds."""

    def __init__(
        self,
        db: Database,
        settings: PortalSettings,
        holders: Holders | None,
        on_notices: Callable[[], None] | None = None,
    ) -> None:
        self._db = db
        self._settings = settings
        self._holders = holders
        self._on_notices = on_notices

    async def run_pass(self, now: datetime | None = None) -> PassResult | None:
        """One pass at ``now`` (default: the clock). None: another process is running one."""
        started = time.perf_counter()
        now = now or utcnow()
        with cyclic_gc_paused():
            return await self._run_pass(now, started)

    async def _run_pass(self, now: datetime, started: float) -> PassResult | None:
        async with self._db.write() as session:
            if not await _take_pass_lock(session):
                return None
            world = await observe(
                session,
                now=now,
                offline_after=self._settings.offline_after,
                holders=self._holders,
            )
            live = await _live_incidents(session, world)
            plan = evaluate(world.holding, live, frozenset(world.frozen_pods), now)
            written = await _write_plan(session, plan)
            notices = 0
            if plan.events:
                writer = NoticeWriter(session, now, self._settings)
                await writer.load([written[i.subject.key] for i, _ in plan.events])
                for incident, event in plan.events:
                    notices += writer.add(written[incident.subject.key], event)
                await writer.write()
        result = PassResult(
            pods=world.pods_watched,
            cameras=world.cameras_watched,
            holding=len(world.holding),
            written=len(plan.upserts),
            dropped=len(plan.drops),
            opened=sum(1 for _, event in plan.events if event == "opened"),
            resolved=sum(1 for _, event in plan.events if event == "resolved"),
            notices=notices,
            seconds=time.perf_counter() - started,
        )
        if result.opened or result.resolved:
            log.info(
                "alerts: %d opened, %d resolved, %d notices queued",
                result.opened,
                result.resolved,
                notices,
            )
        if notices and self._on_notices is not None:
            self._on_notices()
        return result

    async def run(self, stop: asyncio.Event) -> None:
        """Pass after pass until ``stop`` is set; a failed pass is logged and retried."""
        while not stop.is_set():
            try:
                await self.run_pass()
            except Exception:  # the loop must outlive a bad pass
                log.exception("alerts: evaluation pass failed")
            with contextlib.suppress(TimeoutError):
                await within(stop.wait(), self._settings.alert_check_interval)
