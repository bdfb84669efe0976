"""The evaluation pass on a real database (SQLite and PostgreSQL): real heartbeats through the
portal app make the pods and cameras, :class:`AlertRunner` passes run with an explicit clock.

Each backend gets its own database: a pass looks at every pod it finds, and the shared test
database holds other tests' tenants."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from platebridge.portal.alerts.observe import Holders
from platebridge.portal.alerts.runner import AlertRunner, PassResult
from platebridge.portal.db import Database
from platebridge.portal.settings import PortalSettings, normalize_database_url
from tests.portal.test_heartbeat import camera_payload
from tests.support.inprocess import AppPortal, app_portal
from tests.support.portal import (
    SeededCompany,
    is_postgres,
    seed_company,
    sql,
)

HB = "/api/pod/heartbeat"
H265 = {"video_codec": "hevc", "codecs": "hvc1.1.6.L120.90"}


@pytest.fixture(scope="module")
def portal(alert_db: str) -> Iterator[AppPortal]:
    with app_portal(alert_db) as app:
        yield app


def _settings(db_url: str) -> PortalSettings:
    return PortalSettings(database_url=db_url, offline_after=400)


def run_pass(
    db_url: str, at: datetime, runners: int = 1, holders: Holders | None = None
) -> list[PassResult | None]:
    """``runners`` passes at once, each with its own engine (like separate portal processes);
    ``holders``: the tunnel registry's answer (None: tunnels not evaluated)."""

    async def go() -> list[PassResult | None]:
        dbs = [Database(normalize_database_url(db_url)) for _ in range(runners)]
        try:
            return list(
                await asyncio.gather(
                    *(AlertRunner(db, _settings(db_url), holders).run_pass(at) for db in dbs)
                )
            )
        finally:
            for db in dbs:
                await db.dispose()

    return asyncio.run(go())


def company_key(db_url: str, company: SeededCompany) -> object:
    """The company id as the backend stores it (SQLite: 32 hex digits)."""
    key = uuid.UUID(company.company_id)
    return key if is_postgres(db_url) else key.hex


def incidents(db_url: str, company: SeededCompany) -> list[dict[str, Any]]:
    rows = sql(
        db_url,
        "SELECT kind, state, camera_id, count, detail, opened_at, resolved_at FROM alert_incidents"
        " WHERE company_id = :c ORDER BY first_seen, kind, camera_id",
        c=company_key(db_url, company),
    )
    keys = ("kind", "state", "camera_id", "count", "detail", "opened_at", "resolved_at")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def beat(portal: AppPortal, company: SeededCompany, **cameras: dict[str, Any]) -> datetime:
    """One real heartbeat with ``cameras`` (camera id → extra fields); returns its time."""
    body = camera_payload(*cameras)
    for entry in body["cameras"]:  # type: ignore[attr-defined]
        entry.update(cameras[entry["camera_id"]])
    r = portal.client.post(HB, headers=company.pod_auth, json=body)
    assert r.status_code == 200, r.text
    return datetime.now(UTC)


def set_rules(db_url: str, company: SeededCompany, rules: str) -> None:
    sql(
        db_url,
        "INSERT INTO alert_settings (company_id, rules, updated_at) VALUES (:c, :r, :t)",
        c=company_key(db_url, company),
        r=rules,
        t=datetime.now(UTC),
    )


def test_camera_error_pends_opens_after_the_threshold_and_recovers(
    portal: AppPortal, alert_db: str
) -> None:
    company = seed_company(alert_db)
    error = {"status": "error", "error": "401 Unauthorized (check the camera password)"}
    t = beat(portal, company, gate=error, lobby={})
    run_pass(alert_db, t)
    assert [(i["kind"], i["state"]) for i in incidents(alert_db, company)] == [
        ("camera_error", "pending")
    ]
    run_pass(alert_db, t + timedelta(seconds=299))
    assert incidents(alert_db, company)[0]["state"] == "pending"
    (result,) = run_pass(alert_db, t + timedelta(seconds=300))
    assert result is not None and result.opened >= 1
    (opened,) = incidents(alert_db, company)
    assert opened["state"] == "open" and opened["camera_id"] == "gate"
    assert "401 Unauthorized" in opened["detail"]
    t2 = beat(portal, company, gate={}, lobby={})  # fixed
    run_pass(alert_db, t2 + timedelta(seconds=1))
    run_pass(alert_db, t2 + timedelta(seconds=300))
    assert incidents(alert_db, company)[0]["state"] == "open"  # clear since t2+1: not yet
    run_pass(alert_db, t2 + timedelta(seconds=302))
    (resolved,) = incidents(alert_db, company)
    assert resolved["state"] == "resolved" and resolved["resolved_at"] is not None


def test_pod_offline_opens_and_freezes_its_cameras(portal: AppPortal, alert_db: str) -> None:
    company = seed_company(alert_db)
    t = beat(portal, company, gate={"status": "error", "error": "no stream"})
    run_pass(alert_db, t)
    run_pass(alert_db, t + timedelta(seconds=300))
    # 10 min without a heartbeat (the default): pod_offline opens; the camera stays as it was
    for minutes in (5.5, 9, 10.1, 30, 60):
        run_pass(alert_db, t + timedelta(minutes=minutes))
    found = {(i["kind"], i["state"]) for i in incidents(alert_db, company)}
    assert found == {("camera_error", "open"), ("pod_offline", "open")}
    (pod,) = [i for i in incidents(alert_db, company) if i["kind"] == "pod_offline"]
    assert pod["opened_at"] is not None and pod["count"] == 1


def test_codec_recording_and_disk_conditions(portal: AppPortal, alert_db: str) -> None:
    company = seed_company(alert_db)
    recording_stopped = {"recording": {"enabled": True, "state": "disk_full"}}
    transcoded = {"media": {**H265, "codecs": "avc1.640028", "transcoded": True}}
    body_cams = {
        "hevc": {"media": H265},
        "fine": {"media": {"video_codec": "h264", "codecs": "avc1.640028"}},
        "transcoded": transcoded,
        "full": recording_stopped,
    }
    body = camera_payload(*body_cams, disk={"total": 100 * 10**9, "free": 3 * 10**9})
    for entry in body["cameras"]:  # type: ignore[attr-defined]
        entry.update(body_cams[entry["camera_id"]])
    r = portal.client.post(HB, headers=company.pod_auth, json=body)
    assert r.status_code == 200, r.text
    t = datetime.now(UTC)
    run_pass(alert_db, t)
    run_pass(alert_db, t + timedelta(seconds=301))
    found = {(i["kind"], i["camera_id"], i["state"]) for i in incidents(alert_db, company)}
    assert found == {
        ("codec_unplayable", "hevc", "open"),
        ("recording_stopped", "full", "open"),
        ("disk_low", "", "open"),
    }
    details = {i["kind"]: i["detail"] for i in incidents(alert_db, company)}
    assert "H.265" in details["codec_unplayable"]
    assert "disk is full" in details["recording_stopped"]
    assert details["disk_low"] == "3% of the disk is free"


def test_turned_off_conditions_never_start_and_stored_ones_end(
    portal: AppPortal, alert_db: str
) -> None:
    company = seed_company(alert_db)
    set_rules(alert_db, company, '{"camera_error_after": null, "recover_after": 0}')
    t = beat(portal, company, gate={"status": "error", "error": "no stream"}, other={"media": H265})
    for seconds in (0, 60, 120):
        run_pass(alert_db, t + timedelta(seconds=seconds))
    assert [(i["kind"], i["state"]) for i in incidents(alert_db, company)] == [
        ("codec_unplayable", "open")
    ]
    sql(
        alert_db,
        "UPDATE alert_settings SET rules = :r WHERE company_id = :c",
        r='{"camera_error_after": null, "codec_unplayable_after": null, "recover_after": 0}',
        c=company_key(alert_db, company),
    )
    run_pass(alert_db, t + timedelta(seconds=121))
    run_pass(alert_db, t + timedelta(seconds=122))
    assert [(i["kind"], i["state"]) for i in incidents(alert_db, company)] == [
        ("codec_unplayable", "resolved")
    ]


def test_decommissioned_pods_are_not_watched(portal: AppPortal, alert_db: str) -> None:
    company = seed_company(alert_db)
    t = beat(portal, company, gate={})
    sql(
        alert_db,
        "UPDATE pods SET decommissioned_at = :t WHERE company_id = :c",
        t=t,
        c=company_key(alert_db, company),
    )
    run_pass(alert_db, t + timedelta(hours=2))
    assert incidents(alert_db, company) == []


def test_passes_from_several_processes_at_once_make_each_incident_once(
    portal: AppPortal, alert_db: str
) -> None:
    company = seed_company(alert_db)
    cams = {f"cam{n}": {"status": "error", "error": "no stream"} for n in range(5)}
    t = beat(portal, company, **cams)
    for step in range(8):
        results = run_pass(alert_db, t + timedelta(seconds=100 * step), runners=3)
        assert any(r is not None for r in results)
    rows = [i for i in incidents(alert_db, company) if i["kind"] == "camera_error"]
    assert sorted(i["camera_id"] for i in rows) == sorted(cams)
    assert {i["state"] for i in rows} == {"open"} and {i["count"] for i in rows} == {1}


def test_tunnel_down_for_a_tunnel_mode_pod(portal: AppPortal, alert_db: str) -> None:
    company = seed_company(alert_db)
    sql(
        alert_db,
        "UPDATE pods SET stream_mode = 'tunnel' WHERE company_id = :c",
        c=company_key(alert_db, company),
    )
    held: dict[uuid.UUID, str] = {}

    async def holders(pods: list[uuid.UUID]) -> dict[uuid.UUID, str]:
        return {pod: node for pod, node in held.items() if pod in pods}

    t = beat(portal, company, gate={})
    run_pass(alert_db, t, holders=holders)
    run_pass(alert_db, t + timedelta(seconds=300), holders=holders)
    assert [(i["kind"], i["state"]) for i in incidents(alert_db, company)] == [
        ("tunnel_down", "open")
    ]
    # unknown (no registry in this process): kept as it is
    run_pass(alert_db, t + timedelta(seconds=320))
    assert incidents(alert_db, company)[0]["state"] == "open"
    ((pod_key,),) = sql(
        alert_db, "SELECT id FROM pods WHERE company_id = :c", c=company_key(alert_db, company)
    )
    held[pod_key if isinstance(pod_key, uuid.UUID) else uuid.UUID(pod_key)] = "node-1"
    t2 = beat(portal, company, gate={})
    run_pass(alert_db, t2, holders=holders)
    run_pass(alert_db, t2 + timedelta(seconds=301), holders=holders)
    assert [(i["kind"], i["state"]) for i in incidents(alert_db, company)] == [
        ("tunnel_down", "resolved")
    ]


def test_a_pass_lets_the_event_loop_run_while_it_reads(
    portal: AppPortal, alert_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Other coroutines of the process run between a pass's rows (every ``YIELD_EVERY``), not
    only once the rows are all done: a ticker coroutine's count, read at each camera the pass
    looks at, moves on during the camera loop (without the yields it cannot: the loop over
    fetched rows never gives the event loop a turn)."""
    from platebridge.portal.alerts import observe as observe_module

    company = seed_company(alert_db)
    beat(portal, company, **{f"cam-{i}": {} for i in range(8)})
    monkeypatch.setattr(observe_module, "YIELD_EVERY", 2)
    judge = observe_module.codec_unplayable
    seen: list[int] = []
    ticks = 0

    def codec_unplayable(media: str | None) -> str | None:
        seen.append(ticks)
        return judge(media)

    monkeypatch.setattr(observe_module, "codec_unplayable", codec_unplayable)

    async def go() -> None:
        nonlocal ticks
        stop = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        db = Database(normalize_database_url(alert_db))
        try:
            await AlertRunner(db, _settings(alert_db), None).run_pass(datetime.now(UTC))
        finally:
            stop.set()
            await task
            await db.dispose()

    asyncio.run(go())
    assert len(seen) >= 8
    assert len(set(seen)) >= len(seen) // 2 - 1, seen
