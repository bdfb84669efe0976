"""The delivery worker: sends the outbox's pending notices (``AlertDelivery`` rows), retrying
with back-off until the retry window ends.

Every portal process runs one. A round claims due rows in one short write transaction
(PostgreSQL: ``SELECT … FOR UPDATE SKIP LOCKED``, so processes claim disjoint rows; SQLite: the
write transaction is exclusive) by setting a lease (``lease_until``, ``lease_owner``) and
counting the attempt, commits, sends without holding a transaction, and then records the
outcome only if the lease is still this worker's.

Exactly once, and what it means for receivers: a process SIGKILLed mid-send leaves its rows
leased; once the lease (``alert_delivery_lease``) expires another process sends them again
with the *same* delivery id and body. A notice is never lost, but a receiver that got the first
request before the kill may see it twice: webhook receivers dedupe on the
``X-PlateBridge-Delivery`` header; e-mail retries keep one Message-ID (``<delivery-id@domain>``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from platebridge.core.aio import within
from platebridge.portal.alerts.email_notice import send_email_notice
from platebridge.portal.alerts.enqueue import retry_deadline
from platebridge.portal.alerts.models import AlertDelivery, AlertEndpoint
from platebridge.portal.alerts.webhook import WebhookError, send_webhook
from platebridge.portal.db import Database
from platebridge.portal.mail import MailError, mail_configured
from platebridge.portal.models import utcnow
from platebridge.portal.settings import PortalSettings

log = logging.getLogger(__name__)

#: Seconds before attempt n+1 after n failed attempts (then 2 h each).
SCHEDULE: tuple[float, ...] = (10, 30, 60, 120, 300, 600, 1800, 3600)
LAST_STEP = 7200.0
#: Rows claimed per round, and sent at once.
BATCH = 32
CONCURRENCY = 8
NO_SMTP = "no SMTP server configured"


def backoff(attempts: int) -> float:
    """Seconds to wait after ``attempts`` failed attempts (pure)."""
    if attempts <= 0:
        return SCHEDULE[0]
    return SCHEDULE[attempts - 1] if attempts <= len(SCHEDULE) else LAST_STEP


@dataclass(frozen=True, slots=True)
class Job:
    """What one claimed delivery needs to be sent (copied out of the claim transaction)."""

    id: uuid.UUID
    channel: str
    event: str
    target: str
    payload: str
    attempts: int
    deadline: datetime
    url: str = ""
    secret: str = ""


@dataclass(frozen=True, slots=True)
class Outcome:
    delivered: bool
    status_code: int | None = None
    error: str | None = None


class DeliveryWorker:
    """Claims, sends and records deliveries; :meth:`run` loops, :meth:`poke` wakes it."""

    def __init__(self, db: Database, settings: PortalSettings, owner: str) -> None:
        self._db = db
        self._settings = settings
        self.owner = owner[:64]
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(CONCURRENCY)

    def poke(self) -> None:
        """New notices were queued: run a round now instead of at the next poll."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Rounds until ``stop`` is set; a full batch goes straight on to the next round."""
        while not stop.is_set():
            done = 0
            try:
                done = await self.deliver_due()
            except Exception:  # the loop must outlive a bad round (database down)
                log.exception("alerts: delivery round failed")
            if done >= BATCH:
                continue
            with contextlib.suppress(TimeoutError):
                await within(self._wake.wait(), self._settings.alert_check_interval)
            self._wake.clear()

    async def deliver_due(self, now: datetime | None = None) -> int:
        """One round at ``now`` (default: the clock): claim, send, record. Returns how many
        deliveries were attempted (or given up on because their endpoint is gone)."""
        now = now or utcnow()
        jobs, closed = await self._claim(now)
        if not jobs:
            return closed
        outcomes = await asyncio.gather(*(self._send(job) for job in jobs))
        async with self._db.write() as session:
            for job, outcome in zip(jobs, outcomes, strict=True):
                await self._record(session, job, outcome, now)
        return len(jobs) + closed

    async def _claim(self, now: datetime) -> tuple[list[Job], int]:
        lease_until = now + timedelta(seconds=self._settings.alert_delivery_lease)
        jobs: list[Job] = []
        closed = 0
        async with self._db.write() as session:
            rows: Sequence[AlertDelivery] = (
                (
                    await session.execute(
                        select(AlertDelivery)
                        .where(
                            AlertDelivery.state == "pending",
                            AlertDelivery.next_attempt_at <= now,
                            or_(
                                AlertDelivery.lease_until.is_(None),
                                AlertDelivery.lease_until < now,
                            ),
                        )
                        .order_by(AlertDelivery.next_attempt_at)
                        .limit(BATCH)
                        .with_for_update(skip_locked=True)
                    )
                )
                .scalars()
                .all()
            )
            for row in rows:
                endpoint = (
                    None
                    if row.endpoint_id is None
                    else await session.get(AlertEndpoint, row.endpoint_id)
                )
                gone = _endpoint_problem(row, endpoint)
                if gone is not None:
                    row.state, row.last_error = "failed", gone
                    row.lease_until = row.lease_owner = None
                    closed += 1
                    log.warning("alerts: delivery %s (%s) failed: %s", row.id, row.target, gone)
                    continue
                row.lease_until, row.lease_owner = lease_until, self.owner
                row.attempts += 1
                row.last_attempt_at = now
                jobs.append(
                    Job(
                        id=row.id,
                        channel=row.channel,
                        event=row.event,
                        target=row.target,
                        payload=row.payload,
                        attempts=row.attempts,
                        deadline=retry_deadline(row, self._settings),
                        url=endpoint.url if endpoint is not None else "",
                        secret=endpoint.secret if endpoint is not None else "",
                    )
                )
        return jobs, closed

    async def _send(self, job: Job) -> Outcome:
        async with self._slots:
            try:
                if job.channel == "webhook":
                    status = await send_webhook(
                        job.url,
                        job.secret,
                        job.payload.encode(),
                        str(job.id),
                        job.event,
                        self._settings,
                    )
                    return Outcome(delivered=True, status_code=status)
                if not mail_configured(self._settings):
                    return Outcome(delivered=False, error=NO_SMTP)
                await send_email_notice(self._settings, job.target, job.payload, str(job.id))
                return Outcome(delivered=True)
            except WebhookError as exc:
                return Outcome(delivered=False, status_code=exc.status_code, error=exc.message)
            except MailError as exc:
                return Outcome(delivered=False, error=exc.message)
            except Exception as exc:  # a bug must not keep the lease until it expires
                log.exception("alerts: sending delivery %s failed unexpectedly", job.id)
                return Outcome(delivered=False, error=f"internal error ({type(exc).__name__})")

    async def _record(
        self, session: AsyncSession, job: Job, outcome: Outcome, now: datetime
    ) -> None:
        values: dict[str, object] = {
            "lease_until": None,
            "lease_owner": None,
            "last_status_code": outcome.status_code,
        }
        if outcome.delivered:
            values.update(state="delivered", delivered_at=now, last_error=None)
            verdict = "delivered"
        elif now >= job.deadline:
            values.update(state="failed", last_error=(outcome.error or "")[:500])
            verdict = "failed (retry window over)"
        else:
            retry_at = now + timedelta(seconds=backoff(job.attempts))
            values.update(next_attempt_at=retry_at, last_error=(outcome.error or "")[:500])
            verdict = f"retry at {retry_at.isoformat()}"
        result = await session.execute(
            update(AlertDelivery)
            .where(
                AlertDelivery.id == job.id,
                AlertDelivery.lease_owner == self.owner,
                AlertDelivery.state == "pending",
            )
            .values(**values)
        )
        if getattr(result, "rowcount", 0) == 0:
            log.warning("alerts: delivery %s: lease lost before the outcome was recorded", job.id)
            return
        log.info(
            "alerts: delivery %s %s to %s attempt %d: %s%s",
            job.id,
            job.channel,
            job.target,
            job.attempts,
            verdict,
            f" ({outcome.error})" if outcome.error else "",
        )


def _endpoint_problem(row: AlertDelivery, endpoint: AlertEndpoint | None) -> str | None:
    """Why ``row`` can no longer be sent (its endpoint deleted or turned off), else None."""
    if row.channel == "webhook" and endpoint is None:
        return "the webhook endpoint was deleted"
    if endpoint is not None and not endpoint.enabled:
        return f"the {endpoint.kind} endpoint is disabled"
    return None
