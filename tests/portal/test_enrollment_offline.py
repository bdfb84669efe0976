"""Site enrollment keys, and pods going offline (and back) by themselves."""

from __future__ import annotations

import httpx
import pytest

from tests.portal.conftest import Portal
from tests.portal.test_heartbeat import camera_payload
from tests.support.portal import SeededCompany, age_pods, create_site, enrollment_key

pytestmark = pytest.mark.e2e  # a real portal process (tests/conftest.py guards it)

HB = "/api/pod/heartbeat"


def enroll_key(portal: Portal, site_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {enrollment_key(portal.db_url, site_id)}"}


def test_enrollment_key_registers_unknown_pod(portal: Portal, tenant: SeededCompany) -> None:
    key = enroll_key(portal, tenant.site_id)
    payload = camera_payload("cam-1")
    payload["pod_id"] = "north-gate-pod"
    r = httpx.post(f"{portal.url}{HB}", headers=key, json=payload)
    assert r.status_code == 200, r.text
    assert r.json()["registered"] is True
    r = httpx.post(f"{portal.url}{HB}", headers=key, json=payload)
    assert r.status_code == 200 and r.json()["registered"] is False

    user = portal.login(tenant)
    pods = {
        p["pod_id"]: p for p in httpx.get(f"{portal.url}/api/pods", headers=user).json()["pods"]
    }
    assert pods["north-gate-pod"]["name"] == "north-gate-pod"
    assert pods["north-gate-pod"]["site_id"] == tenant.site_id
    assert pods["north-gate-pod"]["status"] == "online"
    cams = httpx.get(
        f"{portal.url}/api/cameras", headers=user, params={"pod_id": "north-gate-pod"}
    ).json()["cameras"]
    assert [c["id"] for c in cams] == ["cam-1"]

    # The enrollment key also works for an existing pod of its own site.
    payload["pod_id"] = tenant.pod_id
    assert httpx.post(f"{portal.url}{HB}", headers=key, json=payload).status_code == 200


def test_enrollment_key_refuses_pod_of_another_site(portal: Portal, tenant: SeededCompany) -> None:
    key = enroll_key(portal, create_site(portal.db_url, tenant.community_id, "Back Gate"))
    r = httpx.post(f"{portal.url}{HB}", headers=key, json=camera_payload("cam-1"))
    assert r.status_code == 403, r.text
    assert r.json()["error"] == "pod_in_other_site"
    user = portal.login(tenant)
    assert httpx.get(f"{portal.url}/api/cameras", headers=user).json() == {"cameras": []}
    pods = httpx.get(f"{portal.url}/api/pods", headers=user).json()["pods"]
    assert [(p["pod_id"], p["site_id"]) for p in pods] == [(tenant.pod_id, tenant.site_id)]


def test_pod_goes_offline_after_threshold_and_back(portal: Portal, tenant: SeededCompany) -> None:
    user = portal.login(tenant)
    payload = camera_payload("cam-1")
    assert httpx.post(f"{portal.url}{HB}", headers=tenant.pod_auth, json=payload).status_code == 200
    age_pods(portal.db_url, tenant.company_id, 299)
    assert httpx.get(f"{portal.url}/api/pods", headers=user).json()["pods"][0]["status"] == "online"

    age_pods(portal.db_url, tenant.company_id, 301)  # default PLATEBRIDGE_OFFLINE_AFTER=300
    pod = httpx.get(f"{portal.url}/api/pods", headers=user).json()["pods"][0]
    assert pod["status"] == "offline"
    assert httpx.get(f"{portal.url}/api/pods/{tenant.pod_id}", headers=user).json()["status"] == (
        "offline"
    )
    cam = httpx.get(f"{portal.url}/api/cameras", headers=user).json()["cameras"][0]
    assert (cam["pod_status"], cam["streamable"]) == ("offline", False)

    # The next heartbeat (unchanged content: the fast path) brings it back.
    assert httpx.post(f"{portal.url}{HB}", headers=tenant.pod_auth, json=payload).status_code == 200
    cam = httpx.get(f"{portal.url}/api/cameras", headers=user).json()["cameras"][0]
    assert (cam["pod_status"], cam["streamable"]) == ("online", True)
