"""The audit trail: who got a stream token or started watching which camera, how and from where.

Rows are written by the streaming service and read through :mod:`platebridge.portal.scoping`
(one company's rows only). ``stream_started`` is recorded once per *viewing*, not per playlist
reload: :class:`ViewingTracker` remembers, in process, when each viewer last fetched a camera's
playlist; a fetch after a quiet gap longer than its window starts a new viewing.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, or_
from sqlalchemy.ext.asyncio import AsyncSession

from platebridge.portal.models import AuditAction, AuditEvent, AuditMethod, User, utcnow

Action = AuditAction
Method = AuditMethod

DEFAULT_LIMIT = 200
MAX_LIMIT = 1000


def new_event(
    user: User,
    *,
    pod_id: str,
    camera_id: str,
    action: Action,
    method: Method,
    client_ip: str | None,
    at: datetime | None = None,
    range_: tuple[float, float] | None = None,
) -> AuditEvent:
    """A row by ``user``; ``range_``: the recorded range a footage or share row concerns."""
    return AuditEvent(
        company_id=user.company_id,
        at=at or utcnow(),
        user_id=user.id,
        user_email=user.email,
        pod_id=pod_id,
        camera_id=camera_id,
        action=action,
        method=method,
        client_ip=(client_ip or None) and client_ip[:45],
        range_start=range_[0] if range_ else None,
        range_end=range_[1] if range_ else None,
    )


@dataclass(frozen=True, slots=True)
class AuditFilter:
    pod_id: str | None = None
    camera_id: str | None = None
    #: A user id (UUID) or an e-mail address (case-insensitive).
    user: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    action: Action | None = None
    limit: int = DEFAULT_LIMIT


def _user_clause(user: str) -> Any:
    try:
        return or_(AuditEvent.user_id == uuid.UUID(user), AuditEvent.user_email == user.lower())
    except ValueError:
        return AuditEvent.user_email == user.strip().lower()


def apply_filter(stmt: Select[AuditEvent], flt: AuditFilter) -> Select[AuditEvent]:
    """Narrow an already company-scoped query; newest first, at most ``flt.limit`` rows."""
    if flt.pod_id is not None:
        stmt = stmt.where(AuditEvent.pod_id == flt.pod_id)
    if flt.camera_id is not None:
        stmt = stmt.where(AuditEvent.camera_id == flt.camera_id)
    if flt.user is not None:
        stmt = stmt.where(_user_clause(flt.user))
    if flt.since is not None:
        stmt = stmt.where(AuditEvent.at >= flt.since)
    if flt.until is not None:
        stmt = stmt.where(AuditEvent.at < flt.until)
    if flt.action is not None:
        stmt = stmt.where(AuditEvent.action == flt.action)
    limit = max(1, min(flt.limit, MAX_LIMIT))
    return stmt.order_by(AuditEvent.at.desc(), AuditEvent.id).limit(limit)


def event_json(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": str(event.id),
        "at": event.at.isoformat(),
        "user_id": str(event.user_id) if event.user_id else None,
        "user_email": event.user_email,
        "pod_id": event.pod_id,
        "camera_id": event.camera_id,
        "action": event.action,
        "method": event.method,
        "client_ip": event.client_ip,
        "range_start": event.range_start,
        "range_end": event.range_end,
        "share_id": str(event.share_id) if event.share_id else None,
    }


async def list_events(
    session: AsyncSession, scoped: Select[AuditEvent], flt: AuditFilter
) -> list[dict[str, Any]]:
    rows = (await session.execute(apply_filter(scoped, flt))).scalars().all()
    return [event_json(row) for row in rows]


class ViewingTracker:
    """Decide whether a playlist fetch starts a new viewing (in-process, bounded memory).

    A key (viewer, pod, camera, client address) seen again within ``window`` seconds of its last
    fetch continues the same viewing; players reload a live playlist every few seconds, so a
    viewing lasts as long as the player plays, whatever tokens it renews in between.
    """

    def __init__(self, window: float = 60.0, max_entries: int = 10_000) -> None:
        self.window = window
        self.max_entries = max_entries
        self._last_seen: OrderedDict[tuple[str, ...], float] = OrderedDict()

    def starts_viewing(self, key: tuple[str, ...], now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        last = self._last_seen.pop(key, None)
        self._last_seen[key] = now  # most recently seen last
        self._prune(now)
        return last is None or now - last > self.window

    def _prune(self, now: float) -> None:
        while self._last_seen:
            oldest_key, oldest = next(iter(self._last_seen.items()))
            if now - oldest <= self.window and len(self._last_seen) <= self.max_entries:
                return
            del self._last_seen[oldest_key]
