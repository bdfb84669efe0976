"""The alerts pages (``/alerts``, ``/alerts/settings``) and the cameras page's open-incident
badges, in-process on SQLite and PostgreSQL: the forms, the secret shown once, refusals
re-rendered, roles, another company's rows as the 404 page, CSRF for cookie sessions."""

from __future__ import annotations

import re

import httpx

from tests.portal.alerts.test_alerts_api import add_incidents, viewer_auth
from tests.support.inprocess import AppPortal
from tests.support.portal import SeededCompany, seed_company


def post(portal: AppPortal, auth: dict[str, str], path: str, **form: str) -> httpx.Response:
    return portal.client.post(path, headers=auth, data=form, follow_redirects=False)


def test_settings_forms_and_secret_shown_once(app_portal: AppPortal, tenant: SeededCompany) -> None:
    h = app_portal.login(tenant.email, tenant.password)
    page = app_portal.client.get("/alerts/settings", headers=h)
    assert page.status_code == 200 and 'id="no-endpoints"' in page.text
    r = post(
        app_portal, h, "/alerts/settings/endpoints",
        kind="webhook", name="Night desk", url="https://desk.example.com/in?key=abc",
    )  # fmt: skip
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    secret = re.search(r'id="secret-value" class="mono" readonly value="([^"]+)"', r.text)
    assert secret is not None and len(secret.group(1)) >= 43
    again = app_portal.client.get("/alerts/settings", headers=h)
    assert secret.group(1) not in again.text and "Night desk" in again.text
    assert "key=abc" not in again.text  # the list shows scheme://host only
    endpoint = app_portal.client.get("/api/alerts/endpoints", headers=h).json()["endpoints"][0]
    eid = endpoint["id"]
    r = post(app_portal, h, f"/alerts/settings/endpoints/{eid}/test")
    assert r.status_code == 200 and "Test notice queued for Night desk (1 target)" in r.text
    assert post(app_portal, h, f"/alerts/settings/endpoints/{eid}/disable").status_code == 303
    assert not app_portal.client.get(f"/api/alerts/endpoints/{eid}", headers=h).json()["enabled"]
    r = post(app_portal, h, f"/alerts/settings/endpoints/{eid}/rotate-secret")
    assert r.status_code == 200 and 'id="shown-secret"' in r.text
    assert secret.group(1) not in r.text
    r = post(
        app_portal, h, "/alerts/settings/endpoints", kind="email", name="Guards",
        recipients="a@example.com, b@example.com",
    )  # fmt: skip
    assert r.status_code == 303
    r = post(app_portal, h, "/alerts/settings/endpoints", kind="webhook", name="x", url="ftp://x")
    assert r.status_code == 422 and "http:// or https://" in r.text
    r = post(
        app_portal, h, "/alerts/settings/rules",
        pod_offline_after="900", camera_error_after="", disk_low_percent="15", recover_after="60",
    )  # fmt: skip
    assert r.status_code == 303
    rules = app_portal.client.get("/api/alerts/rules", headers=h).json()["rules"]
    assert rules["pod_offline_after"] == 900 and rules["camera_error_after"] is None
    assert rules["disk_low_percent"] == 15 and rules["codec_unplayable_after"] is None
    r = post(app_portal, h, "/alerts/settings/rules", pod_offline_after="0", recover_after="1")
    assert r.status_code == 422 and "pod_offline_after" in r.text
    history = app_portal.client.get("/alerts", headers=h)
    assert history.status_code == 200 and 'id="deliveries"' in history.text
    assert "desk.example.com" in history.text and "key=abc" not in history.text
    assert post(app_portal, h, f"/alerts/settings/endpoints/{eid}/delete").status_code == 303
    history = app_portal.client.get("/alerts", headers=h)  # its log rows went with it
    assert 'id="no-deliveries"' in history.text


def test_history_page_filters_and_camera_badges(
    app_portal: AppPortal, tenant: SeededCompany, db_url: str
) -> None:
    body = {
        "pod_id": tenant.pod_id,
        "ip_address": "10.0.0.5",
        "status": "online",
        "cameras": [
            {"camera_id": "cam-1", "name": "Gate cam"},
            {"camera_id": "cam-2", "name": "Side cam"},
        ],
    }
    r = app_portal.client.post("/api/pod/heartbeat", headers=tenant.pod_auth, json=body)
    assert r.status_code == 200
    ids = add_incidents(db_url, tenant)
    v = viewer_auth(app_portal, tenant, db_url)
    page = app_portal.client.get("/alerts", headers=v)
    assert page.status_code == 200
    shown = re.findall(r'data-incident="([0-9a-f-]{36})"', page.text)
    assert shown == ids[3::-1]  # the pending one is not an alert
    assert 'id="deliveries"' not in page.text and "Alert settings" not in page.text
    page = app_portal.client.get("/alerts", headers=v, params={"state": "open", "kind": "disk_low"})
    assert re.findall(r'data-incident="([0-9a-f-]{36})"', page.text) == [ids[3]]
    assert 'href="/alerts"' in page.text  # the nav link
    cards = app_portal.client.get("/cameras", headers=v).text
    gate = cards[cards.index('data-camera="main-gate-pod/cam-1"') :]
    gate = gate[: gate.index("</li>")]
    assert 'data-incident="camera_error"' in gate and "Camera in error" in gate
    assert 'data-incident="disk_low"' in gate  # the pod's incident shows on its cameras
    other = cards[cards.index('data-camera="main-gate-pod/cam-2"') :]
    other = other[: other.index("</li>")]
    assert 'data-incident="camera_error"' not in other and 'data-incident="disk_low"' in other
    assert 'data-incident="tunnel_down"' not in cards and 'data-incident="pod_offline"' not in cards


def test_roles_other_company_and_csrf(
    app_portal: AppPortal, tenant: SeededCompany, db_url: str
) -> None:
    v = viewer_auth(app_portal, tenant, db_url)
    assert app_portal.client.get("/alerts/settings", headers=v).status_code == 403
    assert post(app_portal, v, "/alerts/settings/rules", pod_offline_after="5").status_code == 403
    r = post(app_portal, v, f"/alerts/subscriptions/{tenant.site_id}", subscribe="1")
    assert r.status_code == 303
    subs = app_portal.client.get("/api/alerts/subscriptions", headers=v).json()["sites"]
    assert subs[0]["subscribed"] is True
    assert "Unsubscribe" in app_portal.client.get("/alerts", headers=v).text
    other = seed_company(db_url)
    oh = app_portal.login(other.email, other.password)
    made = app_portal.client.post(
        "/api/alerts/endpoints",
        headers=oh,
        json={"kind": "webhook", "name": "Theirs", "url": "https://theirs.example.com/"},
    ).json()
    h = app_portal.login(tenant.email, tenant.password)
    for action in ("enable", "disable", "delete", "test", "rotate-secret"):
        r = post(app_portal, h, f"/alerts/settings/endpoints/{made['id']}/{action}")
        assert r.status_code == 404 and "Theirs" not in r.text, action
    r = post(app_portal, h, f"/alerts/subscriptions/{other.site_id}", subscribe="1")
    assert r.status_code == 404
    assert "Theirs" not in app_portal.client.get("/alerts/settings", headers=h).text
    # A cookie session's form without the CSRF token is refused.
    token = h["Authorization"].removeprefix("Bearer ")
    cookie = httpx.Client(transport=app_portal.client._transport, base_url="http://portal.test")
    cookie.cookies.set("pb_session", token)
    r = cookie.post("/alerts/settings/rules", data={"pod_offline_after": "5"})
    assert r.status_code == 403
    assert (
        app_portal.client.get("/api/alerts/rules", headers=h).json()["rules"]["pod_offline_after"]
        == 600
    )
