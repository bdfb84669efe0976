"""The incident state machine: a pure function of what holds now and the live incidents.

Rules (docs/alerts.md, "Incidents"):

* A condition that holds and has no live incident starts one, ``pending`` (nothing is sent).
  ``first_seen`` is when the condition began: the observation's ``since`` when it is known
  (a pod offline: its last heartbeat), else now.
* A ``pending`` incident opens (``opened`` notice) on a pass where the condition holds and
  ``now - first_seen >= threshold``. The threshold counts the whole episode, so a camera that
  bounces in and out of error still opens once the episode is long enough.
* A condition that stops holding sets ``clear_since``; holding again before ``recover_after``
  has passed clears it and counts up ``count`` (one incident, no storm).
* Clear for ``recover_after``: an ``open`` incident resolves (``resolved`` notice), a
  ``pending`` one is dropped (it never alerted).
* What cannot be known now (the cameras, disk and tunnel of an offline pod: its pod is
  ``frozen``) stays as it is until the pod reports again; only ``pod_offline`` moves.
* A holding incident is rewritten only when something changed or ``last_seen`` is older than
  :data:`LAST_SEEN_REFRESH` (10,000 offline pods are not 10,000 updates every pass).
* A condition turned off counts as clear.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal

from platebridge.portal.alerts.models import IncidentKind, IncidentState


@dataclass(frozen=True, slots=True)
class Subject:
    """What an incident is about: one condition on one pod or one of its cameras."""

    kind: IncidentKind
    pod_id: uuid.UUID
    camera_id: str = ""

    @property
    def key(self) -> str:
        """The live-incident key (``alert_incidents.open_key``)."""
        return f"{self.kind}:{self.pod_id}:{self.camera_id}"


@dataclass(frozen=True, slots=True)
class Observation:
    """A condition that holds now. ``threshold`` and ``recover_after`` are the company's rules."""

    subject: Subject
    company_id: uuid.UUID
    threshold: float
    recover_after: float
    since: datetime | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Incident:
    """A live (not resolved) incident as the evaluator sees it; ``id`` None: not stored yet."""

    subject: Subject
    company_id: uuid.UUID
    state: IncidentState
    first_seen: datetime
    last_seen: datetime
    recover_after: float
    id: uuid.UUID | None = None
    opened_at: datetime | None = None
    clear_since: datetime | None = None
    resolved_at: datetime | None = None
    count: int = 1
    detail: str = ""


Event = Literal["opened", "resolved"]

#: Seconds after which an unchanged holding incident's ``last_seen`` is written again.
LAST_SEEN_REFRESH = 300.0


@dataclass(slots=True)
class Plan:
    """What a pass changes: incidents to write (new or updated), pending incidents to drop, and
    the notices to send (each with the incident as written)."""

    upserts: list[Incident] = field(default_factory=list)
    drops: list[Incident] = field(default_factory=list)
    events: list[tuple[Incident, Event]] = field(default_factory=list)


def _held(incident: Incident, obs: Observation, now: datetime) -> Incident:
    count = incident.count + (1 if incident.clear_since is not None else 0)
    return replace(
        incident,
        last_seen=now,
        clear_since=None,
        count=count,
        detail=obs.detail or incident.detail,
        recover_after=obs.recover_after,
    )


def _changed(before: Incident, after: Incident) -> bool:
    if replace(before, last_seen=after.last_seen, recover_after=after.recover_after) != after:
        return True
    return (after.last_seen - before.last_seen).total_seconds() >= LAST_SEEN_REFRESH


def _is_frozen(subject: Subject, frozen_pods: frozenset[uuid.UUID]) -> bool:
    return subject.kind != "pod_offline" and subject.pod_id in frozen_pods


def evaluate(
    holding: dict[str, Observation],
    live: dict[str, Incident],
    frozen_pods: frozenset[uuid.UUID],
    now: datetime,
) -> Plan:
    """The changes of one pass. ``holding`` and ``live`` are keyed by :attr:`Subject.key`;
    ``live`` holds every pending and open incident. Unchanged incidents are not in the plan."""
    plan = Plan()
    for key, obs in holding.items():
        before = live.get(key)
        incident = before
        if incident is None:
            incident = Incident(
                subject=obs.subject,
                company_id=obs.company_id,
                state="pending",
                first_seen=min(obs.since or now, now),
                last_seen=now,
                recover_after=obs.recover_after,
                detail=obs.detail,
            )
        else:
            incident = _held(incident, obs, now)
        if incident.state == "pending" and (now - incident.first_seen).total_seconds() >= (
            obs.threshold
        ):
            incident = replace(incident, state="open", opened_at=now)
            plan.events.append((incident, "opened"))
        if before is None or _changed(before, incident):
            plan.upserts.append(incident)
    for key, incident in live.items():
        if key in holding or _is_frozen(incident.subject, frozen_pods):
            continue
        if incident.clear_since is None:
            plan.upserts.append(replace(incident, clear_since=now))
            continue
        if (now - incident.clear_since).total_seconds() < incident.recover_after:
            continue
        if incident.state == "pending":
            plan.drops.append(incident)
        else:
            resolved = replace(incident, state="resolved", resolved_at=now)
            plan.upserts.append(resolved)
            plan.events.append((resolved, "resolved"))
    return plan
