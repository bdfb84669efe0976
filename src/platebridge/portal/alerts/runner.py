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
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from platebridge.portal.alerts.enqueue import NoticeWriter
from platebridge.portal.alerts.evaluate import Incident, Subject, evaluate
from platebridge.portal.alerts.models import AlertIncident
from platebridge.portal.alerts.observe import Holders, observe
from platebridge.portal.db import Database
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


def _incident(row: AlertIncident, recover_after: float) -> Incident:
    return Incident(
        subject=Subject(row.kind, row.pod_id, row.camera_id),
        company_id=row.company_id,
        state=row.state,
        first_seen=row.first_seen,
        last_seen=row.last_seen,
        recover_after=recover_after,
        id=row.id,
        opened_at=row.opened_at,
        clear_since=row.clear_since,
        resolved_at=row.resolved_at,
        count=row.count,
        detail=row.detail,
    )


def _write(row: AlertIncident, incident: Incident) -> None:
    row.state = incident.state
    row.open_key = None if incident.state == "resolved" else incident.subject.key
    row.first_seen = incident.first_seen
    row.last_seen = incident.last_seen
    row.opened_at = incident.opened_at
    row.clear_since = incident.clear_since
    row.resolved_at = incident.resolved_at
    row.count = incident.count
    row.detail = incident.detail


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
        async with self._db.write() as session:
            if not await _take_pass_lock(session):
                return None
            world = await observe(
                session,
                now=now,
                offline_after=self._settings.offline_after,
                holders=self._holders,
            )
            rows = {
                row.open_key: row
                for row in (
                    await session.execute(
                        select(AlertIncident).where(AlertIncident.open_key.is_not(None))
                    )
                ).scalars()
                if row.open_key
            }
            live = {
                key: _incident(row, world.rules_of(row.company_id).recover_after)
                for key, row in rows.items()
            }
            plan = evaluate(world.holding, live, frozenset(world.frozen_pods), now)
            written: dict[str, AlertIncident] = {}
            for incident in plan.upserts:
                key = incident.subject.key
                row = rows.get(key)
                if row is None:
                    row = AlertIncident(
                        id=new_uuid(),
                        company_id=incident.company_id,
                        kind=incident.subject.kind,
                        pod_id=incident.subject.pod_id,
                        camera_id=incident.subject.camera_id,
                    )
                    session.add(row)
                _write(row, incident)
                written[key] = row
            for incident in plan.drops:
                await session.delete(rows[incident.subject.key])
            await session.flush()
            notices = 0
            if plan.events:
                writer = NoticeWriter(session, now, self._settings)
                await writer.load([written[i.subject.key] for i, _ in plan.events])
                for incident, event in plan.events:
                    notices += writer.add(written[incident.subject.key], event)
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
                await asyncio.wait_for(stop.wait(), self._settings.alert_check_interval)
