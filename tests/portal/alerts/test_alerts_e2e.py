"""Issue 14's acceptance with real parts: a real portal process (alerts on, short intervals), a
real POD agent heartbeating to it, a real SMTP server (aiosmtpd) and a real HTTP receiver.

* the agent stopped → one "opened" webhook and one e-mail, each once; restarted → one
  "resolved" notice each; the signature verifies by the documented recipe (docs/alerts.md);
* two portal processes on one PostgreSQL, the one sending a notice SIGKILLed mid-request → the
  other sends it after the lease, with the same delivery id: one delivery row, delivered.

Each test has its own database: a pass looks at every pod it finds."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import require_postgres
from tests.support.agent import Agent
from tests.support.builders import pod_config
from tests.support.portal import (
    PortalProc,
    create_pg_database,
    drop_pg_database,
    migrate,
    new_sqlite_url,
    portal_process,
    seed_company,
    sql,
    start_portal,
)
from tests.support.procs import free_port, wait_until
from tests.support.receiver import TOKEN, Receiver
from tests.support.smtp import SmtpServer

pytestmark = pytest.mark.e2e

#: Everything off but pod_offline (3 s), recovery after 2 s clear.
RULES = {
    "pod_offline_after": 3,
    "camera_error_after": None,
    "codec_unplayable_after": None,
    "recording_stopped_after": None,
    "disk_low_after": None,
    "tunnel_down_after": None,
    "recover_after": 2,
}


def alert_env(**extra: str) -> dict[str, str]:
    return {
        "PLATEBRIDGE_ALERTS_ENABLED": "true",
        "PLATEBRIDGE_ALERT_CHECK_INTERVAL": "0.5",
        "PLATEBRIDGE_OFFLINE_AFTER": "2",
        "PLATEBRIDGE_ALERT_WEBHOOK_NETWORKS": "127.0.0.0/8",
        "PLATEBRIDGE_PUBLIC_URL": "https://portal.example.test",
        **extra,
    }


def verify(secret: str, header: str, body: bytes) -> bool:
    """The documented recipe, written out again here (docs/alerts.md, "Webhook")."""
    fields = dict(part.split("=", 1) for part in header.split(","))
    expected = hmac.new(secret.encode(), f"{fields['t']}.".encode() + body, hashlib.sha256)
    return hmac.compare_digest(expected.hexdigest(), fields["v1"])


def api(portal: PortalProc, auth: dict[str, str], method: str, path: str, **kw: Any) -> Any:
    r = httpx.request(method, f"{portal.url}{path}", headers=auth, timeout=10, **kw)
    assert r.status_code < 300, r.text
    return r.json()


@pytest.fixture
def sqlite_db(tmp_path: Path) -> str:
    url = new_sqlite_url(tmp_path)
    migrate(url)
    return url


def test_agent_stopped_alerts_once_and_recovers_once(tmp_path: Path, sqlite_db: str) -> None:
    tenant = seed_company(sqlite_db)
    with (
        SmtpServer() as smtp,
        Receiver() as receiver,
        portal_process(
            sqlite_db, alert_env(**smtp.portal_env()), log_dir=tmp_path, log_level="debug"
        ) as portal,
    ):
        auth = portal.login(tenant.email, tenant.password)
        api(portal, auth, "PUT", "/api/alerts/rules", json=RULES)
        hook = api(
            portal,
            auth,
            "POST",
            "/api/alerts/endpoints",
            json={"kind": "webhook", "name": "ops", "url": receiver.url()},
        )
        api(
            portal,
            auth,
            "POST",
            "/api/alerts/endpoints",
            json={"kind": "email", "name": "guards", "recipients": ["guards@example.test"]},
        )
        # a camera nobody serves: the camera is in error, which these rules ignore
        config = pod_config(
            tmp_path,
            f"rtsp://127.0.0.1:{free_port()}/stream",
            tenant=tenant,
            portal_url=portal.url,
        )
        agent = Agent(tmp_path, config)
        try:
            wait_until(lambda: last_heartbeat(sqlite_db) is not None, timeout=30, what="beat")
            time.sleep(3)  # online for a while: nothing is sent
            assert receiver.hits == [] and smtp.messages == []

            agent.stop()
            stopped = time.monotonic()
            wait_until(lambda: len(receiver.hits) >= 1, timeout=60, what="opened webhook")
            print(f"opened webhook {time.monotonic() - stopped:.1f} s after the agent stopped")
            smtp.wait_for(1, timeout=30)
            time.sleep(3)  # six more passes: still once
            assert len(receiver.hits) == 1 and len(smtp.messages) == 1
        finally:
            agent.close()
        opened = receiver.hits[0]
        assert opened.headers["x-platebridge-event"] == "opened"
        assert verify(hook["secret"], opened.headers["x-platebridge-signature"], opened.body)
        assert not verify("another secret", opened.headers["x-platebridge-signature"], opened.body)
        document = json.loads(opened.body)
        assert document["schema"] == "platebridge.alert/1"
        assert document["incident"]["kind"] == "pod_offline"
        assert document["delivery_id"] == opened.headers["x-platebridge-delivery"]
        assert document["pod"]["id"] == tenant.pod_id
        mail = smtp.messages[0]
        assert "POD offline" in mail.message["Subject"]
        assert "POD offline" in mail.part("plain") and "POD offline" in mail.part("html")

        agent = Agent(tmp_path, config)
        try:
            wait_until(lambda: len(receiver.hits) >= 2, timeout=60, what="resolved webhook")
            smtp.wait_for(2, timeout=30)
            time.sleep(3)
            assert len(receiver.hits) == 2 and len(smtp.messages) == 2
        finally:
            agent.close()
        resolved = receiver.hits[1]
        assert resolved.headers["x-platebridge-event"] == "resolved"
        assert json.loads(resolved.body)["incident"]["id"] == document["incident"]["id"]
        assert "Resolved" in smtp.messages[1].message["Subject"]
        # the history says the same: one incident, resolved, count 1
        (incident,) = api(portal, auth, "GET", "/api/alerts/incidents")["incidents"]
        assert incident["state"] == "resolved" and incident["count"] == 1
        # at DEBUG too (every library's logger): neither the signing secret nor the receiver's
        # token in the webhook URL's query
        output = portal.output()
        assert hook["secret"] not in output and TOKEN not in output


def last_heartbeat(db_url: str) -> Any:
    rows = sql(db_url, "SELECT last_heartbeat FROM pods")
    return rows[0][0] if rows else None


@pytest.fixture
def pg_db() -> Iterator[str]:
    require_postgres()
    url = create_pg_database("pb_alerts_kill")
    migrate(url)
    try:
        yield url
    finally:
        drop_pg_database(url)


def test_sigkill_mid_delivery_is_sent_again_not_lost_not_doubled(
    tmp_path: Path, pg_db: str
) -> None:
    tenant = seed_company(pg_db)
    release = threading.Event()
    env = alert_env(PLATEBRIDGE_ALERT_DELIVERY_LEASE="3")
    with Receiver() as receiver:
        first_request = threading.Event()

        def hold_the_first(hit: object) -> None:
            if not first_request.is_set():
                first_request.set()
                release.wait(30)

        receiver.before_answer = hold_the_first
        portals: list[PortalProc] = []
        try:
            for name in ("a", "b"):
                (tmp_path / name).mkdir()
                portals.append(start_portal(pg_db, env, log_dir=tmp_path / name))
            auth = portals[0].login(tenant.email, tenant.password)
            hook = api(
                portals[0],
                auth,
                "POST",
                "/api/alerts/endpoints",
                json={"kind": "webhook", "name": "ops", "url": receiver.url()},
            )
            sent = api(portals[0], auth, "POST", f"/api/alerts/endpoints/{hook['id']}/test")
            assert first_request.wait(30), "no process sent the notice"
            ((owner,),) = sql(pg_db, "SELECT lease_owner FROM alert_deliveries")
            victim = next(p for p in portals if owner.endswith(f":{p.pid}"))
            os.kill(victim.pid, signal.SIGKILL)
            victim.proc.popen.wait(10)
            release.set()
            wait_until(
                lambda: sql(pg_db, "SELECT state FROM alert_deliveries")[0][0] == "delivered",
                timeout=60,
                what="delivered by the other process",
            )
        finally:
            release.set()
            for portal in portals:
                portal.stop()
    rows = sql(pg_db, "SELECT id, state, attempts, lease_owner FROM alert_deliveries")
    assert len(rows) == 1
    delivery_id, state, attempts, _ = rows[0]
    assert state == "delivered" and attempts == 2
    assert sent["delivery_ids"] == [str(delivery_id)]
    # the receiver saw the same delivery twice (the first request died with its process)
    assert receiver.ids() == [str(delivery_id)] * 2
