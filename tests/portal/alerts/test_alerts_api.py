"""The alerts API (docs/alerts.md, "API and pages") on SQLite and PostgreSQL, the portal
in-process: rules, endpoints (the secret shown once), send test, the delivery log, incidents
(filters, cursor), subscriptions, roles and another company's rows."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from platebridge.portal.alerts.models import AlertIncident
from platebridge.portal.models import Pod
from platebridge.portal.services import admin
from tests.support.inprocess import AppPortal
from tests.support.portal import SeededCompany, in_session, seed_company, sql

A = "/api/alerts"


def auth(portal: AppPortal, tenant: SeededCompany) -> dict[str, str]:
    return portal.login(tenant.email, tenant.password)


def viewer_auth(portal: AppPortal, tenant: SeededCompany, db_url: str) -> dict[str, str]:
    email = f"viewer-{uuid.uuid4().hex[:8]}@example.test"

    async def make(s: Any) -> None:
        await admin.create_user(s, tenant.company_id, email, tenant.password, "viewer")

    import asyncio

    asyncio.run(in_session(db_url, make))
    return portal.login(email, tenant.password)


def changes(db_url: str, company_id: str) -> list[tuple[str, str]]:
    rows = sql(
        db_url,
        "SELECT action, detail FROM admin_changes WHERE company_id = :c ORDER BY at",
        c=company_id.replace("-", "") if "sqlite" in db_url else company_id,
    )
    return [(a, d) for a, d in rows]


def webhook(portal: AppPortal, h: dict[str, str], url: str = "https://hooks.example.com/x?t=1"):
    r = portal.client.post(
        f"{A}/endpoints", headers=h, json={"kind": "webhook", "name": "Ops hook", "url": url}
    )
    assert r.status_code == 201, r.text
    return r


def test_rules_default_put_validate_and_audit(
    app_portal: AppPortal, tenant: SeededCompany, db_url: str
) -> None:
    h = auth(app_portal, tenant)
    r = app_portal.client.get(f"{A}/rules", headers=h)
    assert r.status_code == 200 and r.json()["rules"]["pod_offline_after"] == 600
    r = app_portal.client.put(
        f"{A}/rules", headers=h, json={"pod_offline_after": 120, "tunnel_down_after": None}
    )
    assert r.status_code == 200, r.text
    assert r.json()["rules"]["pod_offline_after"] == 120
    assert r.json()["rules"]["tunnel_down_after"] is None
    assert app_portal.client.get(f"{A}/rules", headers=h).json() == r.json()
    bad = app_portal.client.put(
        f"{A}/rules", headers=h, json={"pod_offline_after": 0, "nonsense": 1}
    )
    assert bad.status_code == 422
    body = bad.json()
    assert body["error"] == "validation_error"
    assert {d["field"] for d in body["detail"]} == {"pod_offline_after", "nonsense"}
    assert [a for a, _ in changes(db_url, tenant.company_id)].count("alerts.rules") == 1


def test_webhook_secret_is_shown_once_and_never_again(
    app_portal: AppPortal, tenant: SeededCompany, db_url: str
) -> None:
    h = auth(app_portal, tenant)
    r = webhook(app_portal, h)
    created = r.json()
    secret = created["secret"]
    assert len(secret) >= 43 and r.headers["cache-control"] == "no-store"
    assert created["target"] == "https://hooks.example.com" and created["enabled"] is True
    eid = created["id"]
    listed = app_portal.client.get(f"{A}/endpoints", headers=h)
    shown = app_portal.client.get(f"{A}/endpoints/{eid}", headers=h)
    patched = app_portal.client.patch(
        f"{A}/endpoints/{eid}", headers=h, json={"name": "Renamed", "enabled": False}
    )
    assert patched.status_code == 200 and patched.json()["enabled"] is False
    for resp in (listed, shown, patched):
        assert secret not in resp.text and "secret" not in resp.json()
    rotated = app_portal.client.post(f"{A}/endpoints/{eid}/rotate-secret", headers=h)
    assert rotated.status_code == 200 and rotated.json()["secret"] != secret
    assert rotated.headers["cache-control"] == "no-store"
    trail = json.dumps(changes(db_url, tenant.company_id))
    assert secret not in trail and rotated.json()["secret"] not in trail
    assert "?t=1" not in trail  # the URL's query (a receiver's token) stays out of the trail
    actions = [a for a, _ in changes(db_url, tenant.company_id)]
    assert actions[-3:] == [
        "alerts.endpoint.create",
        "alerts.endpoint.update",
        "alerts.endpoint.rotate_secret",
    ]
    assert app_portal.client.delete(f"{A}/endpoints/{eid}", headers=h).status_code == 200
    assert app_portal.client.get(f"{A}/endpoints/{eid}", headers=h).status_code == 404
    assert changes(db_url, tenant.company_id)[-1][0] == "alerts.endpoint.delete"


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "webhook", "name": "x", "url": "ftp://example.com/"},
        {"kind": "webhook", "name": "x", "url": "https://user:pw@example.com/"},
        {"kind": "webhook", "name": "x", "url": "https:///nohost"},
        {"kind": "webhook", "name": "x", "url": "javascript:alert(1)"},
        {"kind": "webhook", "name": "x"},
        {"kind": "email", "name": "x", "recipients": ["not-an-address"]},
        {"kind": "email", "name": "x", "recipients": []},
        {"kind": "email", "name": "x", "recipients": ["a@example.com"], "url": "https://e.com"},
        {"kind": "sms", "name": "x"},
        {"kind": "webhook", "name": "", "url": "https://example.com"},
    ],
)
def test_endpoint_validation_is_422(
    app_portal: AppPortal, pristine_tenant: SeededCompany, body: dict[str, Any]
) -> None:
    h = auth(app_portal, pristine_tenant)
    r = app_portal.client.post(f"{A}/endpoints", headers=h, json=body)
    assert r.status_code == 422, r.text
    assert "error" in r.json() and "detail" in r.json()


def test_email_endpoint_and_send_test_queue_pending_deliveries(
    app_portal: AppPortal, tenant: SeededCompany
) -> None:
    h = auth(app_portal, tenant)
    r = app_portal.client.post(
        f"{A}/endpoints",
        headers=h,
        json={"kind": "email", "name": "Guards", "recipients": ["A@example.com", "b@example.com"]},
    )
    assert r.status_code == 201 and "secret" not in r.json()
    assert r.json()["recipients"] == ["a@example.com", "b@example.com"]
    mail_id = r.json()["id"]
    hook_id = webhook(app_portal, h).json()["id"]
    r = app_portal.client.post(f"{A}/endpoints/{mail_id}/test", headers=h)
    assert r.status_code == 202 and r.json()["queued"] == 2
    mail_ids = r.json()["delivery_ids"]
    r = app_portal.client.post(f"{A}/endpoints/{hook_id}/test", headers=h)
    assert r.status_code == 202 and r.json()["queued"] == 1
    log = app_portal.client.get(f"{A}/deliveries", headers=h)
    assert log.status_code == 200
    rows = log.json()["deliveries"]
    assert len(rows) == 3 and {d["state"] for d in rows} == {"pending"}
    assert {d["event"] for d in rows} == {"test"}
    assert rows[0]["target"] == "https://hooks.example.com"  # newest first, no path or query
    assert {d["id"] for d in rows if d["channel"] == "email"} == set(mail_ids)
    assert {d["endpoint"] for d in rows} == {"Guards", "Ops hook"}
    only = app_portal.client.get(f"{A}/deliveries", headers=h, params={"endpoint": hook_id})
    assert [d["endpoint_id"] for d in only.json()["deliveries"]] == [hook_id]
    page1 = app_portal.client.get(f"{A}/deliveries", headers=h, params={"limit": 2}).json()
    assert len(page1["deliveries"]) == 2 and page1["next_cursor"]
    page2 = app_portal.client.get(
        f"{A}/deliveries", headers=h, params={"limit": 2, "cursor": page1["next_cursor"]}
    ).json()
    assert len(page2["deliveries"]) == 1 and page2["next_cursor"] is None
    ids = [d["id"] for d in page1["deliveries"] + page2["deliveries"]]
    assert sorted(ids) == sorted(d["id"] for d in rows)
    r = app_portal.client.get(
        f"{A}/deliveries", headers=h, params={"state": "failed", "cursor": page1["next_cursor"]}
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_cursor"
    assert "secret" not in log.text and "payload" not in log.text


def test_viewer_reads_incidents_but_cannot_write(
    app_portal: AppPortal, tenant: SeededCompany, db_url: str
) -> None:
    v = viewer_auth(app_portal, tenant, db_url)
    eid = webhook(app_portal, auth(app_portal, tenant)).json()["id"]
    attempts = [
        ("PUT", f"{A}/rules", {"pod_offline_after": 60}),
        ("POST", f"{A}/endpoints", {"kind": "webhook", "name": "v", "url": "https://e.com"}),
        ("PATCH", f"{A}/endpoints/{eid}", {"enabled": False}),
        ("DELETE", f"{A}/endpoints/{eid}", None),
        ("POST", f"{A}/endpoints/{eid}/test", None),
        ("POST", f"{A}/endpoints/{eid}/rotate-secret", None),
        ("GET", f"{A}/endpoints", None),
        ("GET", f"{A}/deliveries", None),
    ]
    for method, path, body in attempts:
        r = app_portal.client.request(method, path, headers=v, json=body)
        assert r.status_code == 403 and r.json()["error"] == "forbidden", (method, path)
    assert app_portal.client.get(f"{A}/incidents", headers=v).status_code == 200
    assert app_portal.client.get(f"{A}/rules", headers=v).status_code == 200
    h = auth(app_portal, tenant)
    assert app_portal.client.get(f"{A}/endpoints/{eid}", headers=h).json()["enabled"] is True


def test_other_company_endpoints_and_sites_are_404(
    app_portal: AppPortal, tenant: SeededCompany, db_url: str
) -> None:
    other = seed_company(db_url)
    theirs = webhook(app_portal, auth(app_portal, other)).json()["id"]
    h = auth(app_portal, tenant)
    for method, path in (
        ("GET", f"{A}/endpoints/{theirs}"),
        ("PATCH", f"{A}/endpoints/{theirs}"),
        ("DELETE", f"{A}/endpoints/{theirs}"),
        ("POST", f"{A}/endpoints/{theirs}/test"),
        ("POST", f"{A}/endpoints/{theirs}/rotate-secret"),
        ("PUT", f"{A}/subscriptions/{other.site_id}"),
        ("DELETE", f"{A}/subscriptions/{other.site_id}"),
        ("GET", f"{A}/endpoints/not-a-uuid"),
    ):
        body = {"name": "mine now"} if method == "PATCH" else None
        r = app_portal.client.request(method, path, headers=h, json=body)
        assert r.status_code == 404 and r.json()["error"] == "not_found", (method, path)
    assert theirs not in app_portal.client.get(f"{A}/endpoints", headers=h).text
    r = app_portal.client.get(f"{A}/deliveries", headers=h, params={"endpoint": theirs})
    assert r.status_code == 200 and r.json()["deliveries"] == []
    oh = auth(app_portal, other)
    assert app_portal.client.get(f"{A}/endpoints/{theirs}", headers=oh).json()["name"] == "Ops hook"


def test_subscriptions_are_per_user_and_audited(
    app_portal: AppPortal, tenant: SeededCompany, db_url: str
) -> None:
    v = viewer_auth(app_portal, tenant, db_url)
    h = auth(app_portal, tenant)
    r = app_portal.client.get(f"{A}/subscriptions", headers=v)
    assert r.json()["sites"] == [
        {
            "site_id": tenant.site_id,
            "site": "Main Gate",
            "community": "Community",
            "subscribed": False,
            "since": None,
        }
    ]
    for _ in range(2):  # idempotent
        r = app_portal.client.put(f"{A}/subscriptions/{tenant.site_id}", headers=v)
        assert r.status_code == 200 and r.json()["subscribed"] is True
    assert app_portal.client.get(f"{A}/subscriptions", headers=v).json()["sites"][0]["subscribed"]
    assert not app_portal.client.get(f"{A}/subscriptions", headers=h).json()["sites"][0][
        "subscribed"
    ]
    r = app_portal.client.delete(f"{A}/subscriptions/{tenant.site_id}", headers=v)
    assert r.status_code == 200 and r.json()["subscribed"] is False
    actions = [a for a, _ in changes(db_url, tenant.company_id)]
    assert actions.count("alerts.subscribe") == 1 and actions.count("alerts.unsubscribe") == 1


def add_incidents(db_url: str, tenant: SeededCompany) -> list[str]:
    """Five incidents of the tenant's pod: 2 open, 2 resolved, 1 pending (oldest first)."""
    base = datetime.now(UTC) - timedelta(hours=5)

    async def make(s: Any) -> list[str]:
        pod = (
            await s.execute(
                select(Pod).where(
                    Pod.company_id == uuid.UUID(tenant.company_id), Pod.pod_id == tenant.pod_id
                )
            )
        ).scalar_one()
        specs = [
            ("pod_offline", "resolved", ""),
            ("camera_error", "resolved", "cam-1"),
            ("camera_error", "open", "cam-1"),
            ("disk_low", "open", ""),
            ("tunnel_down", "pending", ""),
        ]
        ids = []
        for n, (kind, state, camera) in enumerate(specs):
            at = base + timedelta(hours=n)
            incident = AlertIncident(
                company_id=pod.company_id,
                kind=kind,
                state=state,
                open_key=None if state == "resolved" else f"{kind}:{pod.id}:{camera}",
                pod_id=pod.id,
                camera_id=camera,
                first_seen=at,
                opened_at=None if state == "pending" else at + timedelta(minutes=5),
                last_seen=at + timedelta(minutes=30),
                clear_since=None,
                resolved_at=at + timedelta(minutes=40) if state == "resolved" else None,
                count=n + 1,
                detail=f"detail {n}",
            )
            s.add(incident)
            await s.flush()
            ids.append(str(incident.id))
        return ids

    import asyncio

    ids: list[str] = asyncio.run(in_session(db_url, make))
    return ids


def test_incidents_filters_cursor_and_pending_hidden(
    app_portal: AppPortal, tenant: SeededCompany, db_url: str
) -> None:
    ids = add_incidents(db_url, tenant)
    v = viewer_auth(app_portal, tenant, db_url)
    r = app_portal.client.get(f"{A}/incidents", headers=v)
    assert r.status_code == 200
    got = r.json()["incidents"]
    assert [i["id"] for i in got] == ids[3::-1]  # newest first, pending left out
    assert got[0]["title"] == "POD disk nearly full" and got[0]["pod_id"] == tenant.pod_id
    assert got[1]["camera_id"] == "cam-1" and got[1]["site"] == "Main Gate"

    def ids_of(**params: str) -> list[str]:
        resp = app_portal.client.get(f"{A}/incidents", headers=v, params=params)
        assert resp.status_code == 200, resp.text
        return [i["id"] for i in resp.json()["incidents"]]

    assert ids_of(state="open") == [ids[3], ids[2]]
    assert ids_of(state="resolved") == [ids[1], ids[0]]
    assert ids_of(kind="camera_error") == [ids[2], ids[1]]
    assert ids_of(camera_id="cam-1", state="open") == [ids[2]]
    assert ids_of(site=tenant.site_id) == ids[3::-1]
    assert ids_of(site="Main Gate", pod_id=tenant.pod_id) == ids[3::-1]
    assert ids_of(site="Elsewhere") == [] and ids_of(pod_id="nope") == []
    r = app_portal.client.get(f"{A}/incidents", headers=v, params={"state": "pending"})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "state"
    walked: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 1} | ({"cursor": cursor} if cursor else {})
        page = app_portal.client.get(f"{A}/incidents", headers=v, params=params).json()
        walked += [i["id"] for i in page["incidents"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert walked == ids[3::-1]
    other = seed_company(db_url)
    r = app_portal.client.get(f"{A}/incidents", headers=auth(app_portal, other))
    assert r.json()["incidents"] == []
    r = app_portal.client.get(
        f"{A}/incidents", headers=auth(app_portal, other), params={"cursor": "x.y"}
    )
    assert r.status_code == 400
    for bad in ({"limit": "0"}, {"limit": "501"}, {"kind": "nope"}):
        r = app_portal.client.get(f"{A}/incidents", headers=v, params=bad)
        assert r.status_code == 422
