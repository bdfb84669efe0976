"""Site enrollment keys, and pods going offline (and back) by themselves."""

from __future__ import annotations

from tests.portal.test_heartbeat import camera_payload
from tests.support.inprocess import AppPortal
from tests.support.portal import SeededCompany, age_pods, create_site, enrollment_key

# Fast lane: the portal app in-process (tests/support/inprocess.py) on SQLite and PostgreSQL.

HB = "/api/pod/heartbeat"


def enroll_key(db_url: str, site_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {enrollment_key(db_url, site_id)}"}


def test_enrollment_key_registers_unknown_pod(app_portal: AppPortal, tenant: SeededCompany) -> None:
    key = enroll_key(app_portal.db_url, tenant.site_id)
    payload = camera_payload("cam-1")
    payload["pod_id"] = "north-gate-pod"
    r = app_portal.client.post(HB, headers=key, json=payload)
    assert r.status_code == 200, r.text
    assert r.json()["registered"] is True
    r = app_portal.client.post(HB, headers=key, json=payload)
    assert r.status_code == 200 and r.json()["registered"] is False

    user = app_portal.login(tenant.email, tenant.password)
    pods = {p["pod_id"]: p for p in app_portal.client.get("/api/pods", headers=user).json()["pods"]}
    assert pods["north-gate-pod"]["name"] == "north-gate-pod"
    assert pods["north-gate-pod"]["site_id"] == tenant.site_id
    assert pods["north-gate-pod"]["status"] == "online"
    cams = app_portal.client.get(
        "/api/cameras", headers=user, params={"pod_id": "north-gate-pod"}
    ).json()["cameras"]
    assert [c["id"] for c in cams] == ["cam-1"]

    # The enrollment key also works for an existing pod of its own site.
    payload["pod_id"] = tenant.pod_id
    assert app_portal.client.post(HB, headers=key, json=payload).status_code == 200


def test_enrollment_key_refuses_pod_of_another_site(
    app_portal: AppPortal, tenant: SeededCompany
) -> None:
    site_id = create_site(app_portal.db_url, tenant.community_id, "Back Gate")
    key = enroll_key(app_portal.db_url, site_id)
    r = app_portal.client.post(HB, headers=key, json=camera_payload("cam-1"))
    assert r.status_code == 403, r.text
    assert r.json()["error"] == "pod_in_other_site"
    user = app_portal.login(tenant.email, tenant.password)
    assert app_portal.client.get("/api/cameras", headers=user).json()["cameras"] == []
    pods = app_portal.client.get("/api/pods", headers=user).json()["pods"]
    assert [(p["pod_id"], p["site_id"]) for p in pods] == [(tenant.pod_id, tenant.site_id)]


def test_pod_goes_offline_after_threshold_and_back(
    app_portal: AppPortal, tenant: SeededCompany
) -> None:
    user = app_portal.login(tenant.email, tenant.password)
    payload = camera_payload("cam-1")
    assert app_portal.client.post(HB, headers=tenant.pod_auth, json=payload).status_code == 200
    age_pods(app_portal.db_url, tenant.company_id, 299)
    assert app_portal.client.get("/api/pods", headers=user).json()["pods"][0]["status"] == "online"

    age_pods(app_portal.db_url, tenant.company_id, 301)  # default PLATEBRIDGE_OFFLINE_AFTER=300
    pod = app_portal.client.get("/api/pods", headers=user).json()["pods"][0]
    assert pod["status"] == "offline"
    assert app_portal.client.get(f"/api/pods/{tenant.pod_id}", headers=user).json()["status"] == (
        "offline"
    )
    cam = app_portal.client.get("/api/cameras", headers=user).json()["cameras"][0]
    assert (cam["pod_status"], cam["streamable"]) == ("offline", False)

    # The next heartbeat (unchanged content: the fast path) brings it back.
    assert app_portal.client.post(HB, headers=tenant.pod_auth, json=payload).status_code == 200
    cam = app_portal.client.get("/api/cameras", headers=user).json()["cameras"][0]
    assert (cam["pod_status"], cam["streamable"]) == ("online", True)
