"""The delivery worker on a real database (SQLite and PostgreSQL), a real HTTP receiver
(``http.server`` on 127.0.0.1 in a thread) and a real SMTP server (aiosmtpd). Rounds run with an
explicit clock (``deliver_due(now=...)``), so back-off is stepped over, never slept through.

The module has its own database per backend: a round claims every due row it finds."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from platebridge.portal.alerts.enqueue import enqueue_test
from platebridge.portal.alerts.models import AlertDelivery, AlertEndpoint
from platebridge.portal.alerts.worker import DeliveryWorker, backoff
from platebridge.portal.db import Database
from platebridge.portal.settings import PortalSettings, normalize_database_url
from tests.support.portal import (
    SeededCompany,
    seed_company,
    sql,
)
from tests.support.receiver import TOKEN, Receiver
from tests.support.smtp import SmtpServer

SECRET = "whsec_worker_test_secret"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as state:
        yield state


@pytest.fixture
def company(alert_db: str) -> SeededCompany:
    sql(alert_db, "DELETE FROM alert_deliveries")
    return seed_company(alert_db)


def settings(db_url: str, **extra: Any) -> PortalSettings:
    values: dict[str, Any] = {
        "database_url": db_url,
        "alert_webhook_networks": "127.0.0.0/8",
        "alert_webhook_timeout": 5,
        "alert_retry_window": 3600,
        "alert_delivery_lease": 60,
    }
    values.update(extra)
    return PortalSettings(**values)


def add_endpoint(
    db_url: str, company: SeededCompany, kind: str, copies: int = 1, **fields: Any
) -> tuple[uuid.UUID, list[str]]:
    """An endpoint and ``copies`` "send test" deliveries of it; returns (endpoint id, ids)."""

    async def go() -> tuple[uuid.UUID, list[str]]:
        db = Database(normalize_database_url(db_url))
        try:
            async with db.write() as s:
                endpoint = AlertEndpoint(
                    company_id=uuid.UUID(company.company_id),
                    kind=kind,
                    name=f"{kind} endpoint",
                    created_at=T0,
                    **fields,
                )
                s.add(endpoint)
                await s.flush()
                ids = []
                for _ in range(copies):
                    ids += [str(row.id) for row in await enqueue_test(s, endpoint, T0)]
                return endpoint.id, ids
        finally:
            await db.dispose()

    return asyncio.run(go())


def rounds(db_url: str, conf: PortalSettings, *times: datetime, owner: str = "w1") -> list[int]:
    """``deliver_due`` at each time in turn, one worker."""

    async def go() -> list[int]:
        db = Database(normalize_database_url(db_url))
        try:
            worker = DeliveryWorker(db, conf, owner)
            return [await worker.deliver_due(now=t) for t in times]
        finally:
            await db.dispose()

    return asyncio.run(go())


def change(db_url: str, table: Any, row_id: uuid.UUID | str, **values: Any) -> None:
    """UPDATE one row of ``table`` (a model class) by id, typed by SQLAlchemy."""

    async def go() -> None:
        db = Database(normalize_database_url(db_url))
        try:
            async with db.write() as s:
                key = row_id if isinstance(row_id, uuid.UUID) else uuid.UUID(row_id)
                await s.execute(update(table).where(table.id == key).values(**values))
        finally:
            await db.dispose()

    asyncio.run(go())


def all_deliveries(db_url: str) -> list[AlertDelivery]:
    async def go() -> list[AlertDelivery]:
        db = Database(normalize_database_url(db_url))
        try:
            async with db.read() as s:
                return list((await s.execute(select(AlertDelivery))).scalars())
        finally:
            await db.dispose()

    return asyncio.run(go())


def delivery(db_url: str, delivery_id: str) -> dict[str, Any]:
    (row,) = [r for r in all_deliveries(db_url) if str(r.id) == delivery_id]
    return {c: getattr(row, c) for c in ("state", "attempts", "last_status_code", "last_error",
            "next_attempt_at", "lease_owner", "payload", "delivered_at")}  # fmt: skip


T0 = datetime.now(UTC).replace(microsecond=0)


def test_backoff_schedule() -> None:
    assert [backoff(n) for n in range(1, 12)] == [
        10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 7200, 7200,
    ]  # fmt: skip


def test_webhook_delivered_once_with_a_verifiable_signature(
    alert_db: str, company: SeededCompany, receiver: Receiver
) -> None:
    _, (did,) = add_endpoint(alert_db, company, "webhook", url=receiver.url(), secret=SECRET)
    assert rounds(alert_db, settings(alert_db), T0, T0 + timedelta(hours=1)) == [1, 0]
    (hit,) = receiver.hits
    row = delivery(alert_db, did)
    assert row["state"] == "delivered" and row["attempts"] == 1
    assert row["last_status_code"] == 200 and row["lease_owner"] is None
    assert hit.path == f"/hook?token={TOKEN}" and hit.body == row["payload"].encode()
    assert hit.headers["host"] == f"127.0.0.1:{receiver.port}"
    assert hit.headers["content-type"] == "application/json"
    assert hit.headers["user-agent"].startswith("platebridge-alerts/")
    assert hit.headers["x-platebridge-delivery"] == did
    assert hit.headers["x-platebridge-event"] == "test"
    t, v1 = (part.split("=", 1)[1] for part in hit.headers["x-platebridge-signature"].split(","))
    expected = hmac.new(SECRET.encode(), f"{t}.".encode() + hit.body, hashlib.sha256)
    assert hmac.compare_digest(v1, expected.hexdigest())
    assert json.loads(hit.body)["delivery_id"] == did


def test_500_twice_then_delivered_on_the_third_attempt(
    alert_db: str, company: SeededCompany, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="platebridge.portal.alerts")
    _, (did,) = add_endpoint(alert_db, company, "webhook", url=receiver.url(), secret=SECRET)
    receiver.script = [500, 500]
    conf = settings(alert_db)
    assert rounds(alert_db, conf, T0) == [1]
    first = delivery(alert_db, did)
    assert first["state"] == "pending" and first["last_status_code"] == 500
    assert first["next_attempt_at"] == T0 + timedelta(seconds=10)
    assert "answered 500" in first["last_error"] and TOKEN not in first["last_error"]
    assert SECRET not in first["last_error"]
    # not due before its back-off; then 500 again (+30 s), then 200
    steps = [T0 + timedelta(seconds=s) for s in (5, 10, 39, 40)]
    assert rounds(alert_db, conf, *steps) == [0, 1, 0, 1]
    row = delivery(alert_db, did)
    assert row["state"] == "delivered" and row["attempts"] == 3 and row["last_error"] is None
    assert receiver.ids() == [did, did, did]
    assert "answered 500" in caplog.text and did in caplog.text
    assert SECRET not in caplog.text and TOKEN not in caplog.text and "/hook" not in caplog.text


def test_a_redirect_is_a_failure_and_not_followed(
    alert_db: str, company: SeededCompany, receiver: Receiver
) -> None:
    _, (did,) = add_endpoint(alert_db, company, "webhook", url=receiver.url(), secret=SECRET)
    receiver.script = [302]
    rounds(alert_db, settings(alert_db), T0)
    assert [h.path.split("?")[0] for h in receiver.hits] == ["/hook"]
    row = delivery(alert_db, did)
    assert row["state"] == "pending" and row["last_status_code"] == 302
    assert "redirect" in row["last_error"]


def test_past_the_retry_window_the_delivery_fails(
    alert_db: str, company: SeededCompany, receiver: Receiver
) -> None:
    _, (did,) = add_endpoint(alert_db, company, "webhook", url=receiver.url(), secret=SECRET)
    receiver.script = [500] * 3
    conf = settings(alert_db)
    assert rounds(alert_db, conf, T0, T0 + timedelta(seconds=3601)) == [1, 1]
    row = delivery(alert_db, did)
    assert row["state"] == "failed" and row["attempts"] == 2 and row["last_status_code"] == 500
    assert rounds(alert_db, conf, T0 + timedelta(days=1)) == [0]


def test_ssrf_refusal_is_recorded_without_a_request(
    alert_db: str, company: SeededCompany, receiver: Receiver
) -> None:
    _, (did,) = add_endpoint(alert_db, company, "webhook", url=receiver.url(), secret=SECRET)
    rounds(alert_db, settings(alert_db, alert_webhook_networks=""), T0)
    assert receiver.hits == []
    row = delivery(alert_db, did)
    assert row["state"] == "pending" and "SSRF" in row["last_error"]
    assert TOKEN not in row["last_error"] and "/hook" not in row["last_error"]


def test_a_lease_of_another_worker_is_respected_until_it_expires(
    alert_db: str, company: SeededCompany, receiver: Receiver
) -> None:
    _, (did,) = add_endpoint(alert_db, company, "webhook", url=receiver.url(), secret=SECRET)
    change(
        alert_db,
        AlertDelivery,
        did,
        lease_owner="other",
        lease_until=T0 + timedelta(seconds=60),
        attempts=1,
    )
    conf = settings(alert_db)
    assert rounds(alert_db, conf, T0, T0 + timedelta(seconds=59)) == [0, 0]
    assert receiver.hits == []
    assert rounds(alert_db, conf, T0 + timedelta(seconds=61)) == [1]
    row = delivery(alert_db, did)
    assert row["state"] == "delivered" and row["attempts"] == 2
    assert receiver.ids() == [did]  # the same delivery id a dead worker would have sent


def test_disabled_endpoint_fails_its_deliveries(
    alert_db: str, company: SeededCompany, receiver: Receiver
) -> None:
    eid, (did,) = add_endpoint(alert_db, company, "webhook", url=receiver.url(), secret=SECRET)
    change(alert_db, AlertEndpoint, eid, enabled=False)
    assert rounds(alert_db, settings(alert_db), T0) == [1]
    row = delivery(alert_db, did)
    assert row["state"] == "failed" and "disabled" in row["last_error"]
    assert receiver.hits == []


def test_email_without_smtp_is_retried_with_a_clear_error(
    alert_db: str, company: SeededCompany
) -> None:
    _, (did,) = add_endpoint(alert_db, company, "email", recipients="ops@example.test")
    assert rounds(alert_db, settings(alert_db, smtp_host=""), T0) == [1]
    row = delivery(alert_db, did)
    assert row["state"] == "pending" and row["last_error"] == "no SMTP server configured"
    assert row["next_attempt_at"] == T0 + timedelta(seconds=10)


LINK = "https://portal.example.test/cameras/main-gate-pod/gate"
INCIDENT: dict[str, Any] = {
    "schema": "platebridge.alert/1",
    "event": "opened",
    "title": "Camera in error: Gate <North>",
    "company": {"id": "c", "name": "Acme & Sons"},
    "incident": {
        "id": "i", "kind": "camera_error", "state": "open", "detail": "401 <Unauthorized>",
        "count": 2, "first_seen": "2026-12-03T02:00:00Z", "opened_at": "2026-12-03T02:05:00Z",
        "resolved_at": None,
    },
    "community": {"id": "m", "name": "Oak Hills"},
    "site": {"id": "s", "name": "Main Gate"},
    "pod": {"id": "main-gate-pod", "name": "Main Gate POD"},
    "camera": {"id": "gate", "name": "Gate <North>"},
    "url": LINK,
}  # fmt: skip


def test_email_delivered_with_text_html_link_and_a_stable_message_id(
    alert_db: str, company: SeededCompany
) -> None:
    _, ids = add_endpoint(
        alert_db, company, "email", recipients="ops@example.test, night@example.test"
    )
    incident_id = ids[0]
    payload = json.dumps({**INCIDENT, "delivery_id": incident_id})
    change(alert_db, AlertDelivery, incident_id, payload=payload, event="opened")
    with SmtpServer() as smtp:
        conf = settings(
            alert_db,
            smtp_host="127.0.0.1",
            smtp_port=smtp.port,
            smtp_security="none",
            smtp_from="PlateBridge <alerts@example.test>",
        )
        assert rounds(alert_db, conf, T0) == [2]
        received = smtp.wait_for(2)
    by_to = {m.rcpt_tos[0]: m for m in received}
    assert set(by_to) == {"ops@example.test", "night@example.test"}
    mail = by_to["ops@example.test"]
    assert mail.message["Subject"] == "[PlateBridge] Camera in error: Gate <North>"
    assert mail.message["Message-ID"] == f"<{incident_id}@example.test>"
    text, page = mail.part("plain"), mail.part("html")
    assert LINK in text and f'href="{LINK}"' in page
    assert "401 <Unauthorized>" in text and "Acme & Sons" in text
    assert "401 &lt;Unauthorized&gt;" in page and "Acme &amp; Sons" in page
    assert "<North>" not in page
    test_mail = by_to["night@example.test"]
    assert "test notice" in test_mail.part("plain").lower()
    for did in ids:
        assert delivery(alert_db, did)["state"] == "delivered"


def test_two_workers_racing_send_each_delivery_exactly_once(
    alert_db: str, company: SeededCompany, receiver: Receiver
) -> None:
    _, ids = add_endpoint(
        alert_db, company, "webhook", copies=50, url=receiver.url(), secret=SECRET
    )
    conf = settings(alert_db)

    async def race() -> list[int]:
        dbs = [Database(normalize_database_url(alert_db)) for _ in range(2)]
        workers = [DeliveryWorker(db, conf, f"w{n}") for n, db in enumerate(dbs)]
        done: list[int] = []
        try:
            for _ in range(4):
                done += await asyncio.gather(*(w.deliver_due(now=T0) for w in workers))
        finally:
            for db in dbs:
                await db.dispose()
        return done

    done = asyncio.run(race())
    assert sum(done) == 50
    assert sorted(receiver.ids()) == sorted(ids)  # each once, none twice
    assert {(r.state, r.attempts) for r in all_deliveries(alert_db)} == {("delivered", 1)}


def test_a_host_name_is_resolved_checked_and_sent_with_its_host_header(
    alert_db: str, company: SeededCompany, receiver: Receiver
) -> None:
    url = receiver.url().replace("127.0.0.1", "localhost")
    _, (did,) = add_endpoint(alert_db, company, "webhook", url=url, secret=SECRET)
    conf = settings(alert_db, alert_webhook_networks="127.0.0.0/8,::1/128")
    assert rounds(alert_db, conf, T0) == [1]
    assert delivery(alert_db, did)["state"] == "delivered"
    assert receiver.hits[0].headers["host"] == f"localhost:{receiver.port}"


def test_the_loop_sends_when_poked_and_stops(
    alert_db: str, company: SeededCompany, receiver: Receiver
) -> None:
    conf = settings(alert_db, alert_check_interval=3600)

    async def go() -> None:
        db = Database(normalize_database_url(alert_db))
        worker = DeliveryWorker(db, conf, "loop")
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        try:
            await asyncio.sleep(0.2)  # the first (empty) round is done; the loop waits
            await asyncio.to_thread(
                add_endpoint, alert_db, company, "webhook", url=receiver.url(), secret=SECRET
            )
            worker.poke()
            async with asyncio.timeout(20):  # a bound on waiting, not a timing assertion
                while not receiver.hits:
                    await asyncio.sleep(0.05)
            stop.set()
            worker.poke()
            async with asyncio.timeout(20):
                await task
        finally:
            task.cancel()
            await db.dispose()

    asyncio.run(go())
    assert len(receiver.hits) == 1
