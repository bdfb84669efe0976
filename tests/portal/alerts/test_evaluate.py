"""The incident state machine (alerts/evaluate.py), pass by pass with an explicit clock."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from platebridge.portal.alerts.evaluate import (
    LAST_SEEN_REFRESH,
    Incident,
    Observation,
    Plan,
    Subject,
    evaluate,
)

T0 = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)
COMPANY = uuid.uuid4()
POD = uuid.uuid4()
CAMERA = Subject("camera_error", POD, "gate")


def obs(
    subject: Subject = CAMERA, threshold: float = 300, recover: float = 300, **kw: object
) -> Observation:
    return Observation(subject, COMPANY, threshold, recover, **kw)  # type: ignore[arg-type]


class Fleet:
    """Applies plans like the runner does, so a test can run pass after pass."""

    def __init__(self) -> None:
        self.live: dict[str, Incident] = {}
        self.events: list[tuple[str, Incident]] = []
        self.resolved: list[Incident] = []

    def run(
        self, at: datetime, *holding: Observation, frozen: frozenset[uuid.UUID] = frozenset()
    ) -> Plan:
        plan = evaluate({o.subject.key: o for o in holding}, dict(self.live), frozen, at)
        for incident in plan.upserts:
            if incident.state == "resolved":
                self.live.pop(incident.subject.key, None)
                self.resolved.append(incident)
            else:
                self.live[incident.subject.key] = incident
        for incident in plan.drops:
            del self.live[incident.subject.key]
        self.events.extend((event, incident) for incident, event in plan.events)
        return plan


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


def test_nothing_is_sent_before_the_threshold_then_one_alert_and_one_recovery() -> None:
    fleet = Fleet()
    fleet.run(minutes(0), obs(detail="401 Unauthorized"))
    assert fleet.live[CAMERA.key].state == "pending" and not fleet.events
    fleet.run(minutes(4), obs())
    assert not fleet.events
    fleet.run(minutes(5), obs())
    assert [e for e, _ in fleet.events] == ["opened"]
    opened = fleet.events[0][1]
    assert opened.opened_at == minutes(5) and opened.detail == "401 Unauthorized"
    for m in range(6, 20):
        fleet.run(minutes(m), obs())
    assert len(fleet.events) == 1
    fleet.run(minutes(20))  # clear: recovery waits for recover_after
    fleet.run(minutes(24))
    assert len(fleet.events) == 1 and fleet.live[CAMERA.key].clear_since == minutes(20)
    fleet.run(minutes(25))
    assert [e for e, _ in fleet.events] == ["opened", "resolved"]
    assert fleet.events[1][1].resolved_at == minutes(25) and not fleet.live


def test_a_camera_bouncing_every_minute_is_one_incident_with_a_count() -> None:
    fleet = Fleet()
    for m in range(0, 30):
        # in error on even minutes, fine on odd ones, for half an hour
        fleet.run(minutes(m), *([obs()] if m % 2 == 0 else []))
    opened = [i for e, i in fleet.events if e == "opened"]
    assert len(opened) == 1 and not [e for e, _ in fleet.events if e == "resolved"]
    assert fleet.live[CAMERA.key].count == 15  # 15 onsets in one incident
    for m in range(30, 40):
        fleet.run(minutes(m))
    assert [e for e, _ in fleet.events] == ["opened", "resolved"]


def test_a_short_blip_never_alerts_and_is_forgotten() -> None:
    fleet = Fleet()
    fleet.run(minutes(0), obs())
    fleet.run(minutes(1))
    fleet.run(minutes(5))
    assert CAMERA.key in fleet.live  # still within recover_after
    plan = fleet.run(minutes(6))
    assert plan.drops and not fleet.live and not fleet.events


def test_known_onset_opens_at_once_when_already_past_the_threshold() -> None:
    pod = Subject("pod_offline", POD)
    fleet = Fleet()
    fleet.run(minutes(0), obs(pod, threshold=600, since=minutes(-11)))
    assert [e for e, _ in fleet.events] == ["opened"]
    assert fleet.events[0][1].first_seen == minutes(-11)


def test_frozen_pods_keep_their_camera_incidents_but_pod_offline_moves() -> None:
    fleet = Fleet()
    fleet.run(minutes(0), obs(threshold=60))
    fleet.run(minutes(1), obs(threshold=60))
    assert fleet.live[CAMERA.key].state == "open"
    pod = Subject("pod_offline", POD)
    for m in range(2, 30):  # the pod is gone: its camera's state is unknown, not clear
        fleet.run(minutes(m), obs(pod, threshold=60, since=minutes(1)), frozen=frozenset({POD}))
    assert fleet.live[CAMERA.key].state == "open" and fleet.live[CAMERA.key].clear_since is None
    assert fleet.live[pod.key].state == "open"
    fleet.run(minutes(30), obs(threshold=60))  # back, camera still broken: no new alert
    fleet.run(minutes(36), obs(threshold=60))
    assert [(e, i.subject.kind) for e, i in fleet.events] == [
        ("opened", "camera_error"),
        ("opened", "pod_offline"),
        ("resolved", "pod_offline"),
    ]


def test_recover_after_zero_resolves_on_the_second_clear_pass() -> None:
    fleet = Fleet()
    fleet.run(minutes(0), obs(threshold=1, recover=0))
    fleet.run(minutes(1), obs(threshold=1, recover=0))
    fleet.run(minutes(2), obs(threshold=1, recover=0))
    fleet.run(minutes(3))
    assert [e for e, _ in fleet.events] == ["opened"]
    fleet.run(minutes(3.5))
    assert [e for e, _ in fleet.events] == ["opened", "resolved"]


def test_unchanged_incidents_are_not_rewritten_every_pass() -> None:
    fleet = Fleet()
    fleet.run(minutes(0), obs(threshold=60))
    fleet.run(minutes(1), obs(threshold=60))
    quiet = fleet.run(minutes(1.5), obs(threshold=60))
    assert quiet.upserts == [] and quiet.events == []
    later = minutes(1) + timedelta(seconds=LAST_SEEN_REFRESH)
    refreshed = fleet.run(later, obs(threshold=60))
    assert [i.last_seen for i in refreshed.upserts] == [later]
    detail = fleet.run(later + timedelta(seconds=1), obs(threshold=60, detail="new reason"))
    assert [i.detail for i in detail.upserts] == ["new reason"]


def test_subjects_are_independent() -> None:
    other = Subject("camera_error", POD, "lobby")
    codec = Subject("codec_unplayable", POD, "gate")
    fleet = Fleet()
    fleet.run(minutes(0), obs(), obs(other), obs(codec, threshold=60))
    fleet.run(minutes(1), obs(), obs(other), obs(codec, threshold=60))
    assert [i.subject for _, i in fleet.events] == [codec]
    assert len({CAMERA.key, other.key, codec.key}) == 3


def test_a_clock_earlier_than_a_reported_onset_is_clamped() -> None:
    fleet = Fleet()
    fleet.run(minutes(0), obs(since=minutes(5)))
    assert fleet.live[CAMERA.key].first_seen == minutes(0)


def test_a_resolved_incident_leaves_and_a_new_onset_is_a_new_incident() -> None:
    fleet = Fleet()
    for m in (0, 5):
        fleet.run(minutes(m), obs())
    for m in (6, 11):
        fleet.run(minutes(m))
    fleet.run(minutes(12), obs())
    new = fleet.live[CAMERA.key]
    assert new.state == "pending" and new.count == 1 and new.id is None
    assert replace(new, state="open") != new
