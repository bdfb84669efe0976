"""The spec's heartbeat registers the pod and camera; users see it, other companies do not."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from tests.portal.conftest import Portal
from tests.support.portal import SeededCompany, sql

pytestmark = pytest.mark.e2e  # a real portal process (tests/conftest.py guards it)

# Copied verbatim from the spec ("POD Startup & Registration"), comment included.
SPEC_HEARTBEAT = """{
  "pod_id": "main-gate-pod",
  "ip_address": "192.168.1.100",  # POD's local IP
  "firmware_version": "1.0.0",
  "status": "online",
  "cameras": [
    {
      "camera_id": "gate-camera-1",
      "name": "Main Gate Camera",
      "rtsp_url": "rtsp://192.168.1.50:554/stream",
      "position": "main entrance"
    }
  ]
}"""

# The spec's "Result" of "Portal Queries Cameras", with http (see docs/portal.md).
SPEC_RESULT = {
    "id": "gate-camera-1",
    "name": "Main Gate Camera",
    "stream_url": "http://192.168.1.100:8000/stream",
    "status": "active",
    "pod_id": "main-gate-pod",
    "pod_name": "Main Gate POD",
    "pod_ip": "192.168.1.100",
}


def heartbeat(portal: Portal, t: SeededCompany, payload: object) -> httpx.Response:
    return httpx.post(f"{portal.url}/api/pod/heartbeat", headers=t.pod_auth, json=payload)


def camera_payload(
    *camera_ids: str, ip: str = "192.168.1.100", **extra: object
) -> dict[str, object]:
    return {
        "pod_id": "main-gate-pod",
        "ip_address": ip,
        "firmware_version": "1.0.0",
        "status": "online",
        "cameras": [
            {"camera_id": c, "name": f"Camera {c}", "rtsp_url": "rtsp://10.0.0.5/s", "position": ""}
            for c in camera_ids
        ],
        **extra,
    }


def test_spec_heartbeat_verbatim_registers_camera(portal: Portal, tenant: SeededCompany) -> None:
    before = datetime.now(UTC)
    r = httpx.post(
        f"{portal.url}/api/pod/heartbeat",
        headers={**tenant.pod_auth, "Content-Type": "application/json"},
        content=SPEC_HEARTBEAT.encode(),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ok"] is True
    assert body["pod_id"] == "main-gate-pod"
    assert body["heartbeat_interval"] == 60
    assert datetime.fromisoformat(body["server_time"]) >= before.replace(microsecond=0)

    user = portal.login(tenant)
    r = httpx.get(f"{portal.url}/api/cameras", headers=user)
    assert r.status_code == 200
    cameras = r.json()["cameras"]
    assert len(cameras) == 1
    cam = cameras[0]
    assert {k: cam[k] for k in SPEC_RESULT} == SPEC_RESULT
    assert cam["position"] == "main entrance"
    assert cam["pod_status"] == "online"
    assert cam["streamable"] is True
    assert cam["site"] == tenant.site_name
    assert datetime.fromisoformat(cam["last_heartbeat"]) >= before
    assert "rtsp_url" not in cam

    pods = httpx.get(f"{portal.url}/api/pods", headers=user).json()["pods"]
    assert [(p["pod_id"], p["status"], p["ip_address"], p["firmware_version"]) for p in pods] == [
        ("main-gate-pod", "online", "192.168.1.100", "1.0.0")
    ]
    assert pods[0]["cameras"] == {"total": 1, "active": 1, "inactive": 0, "error": 0}


def test_spec_troubleshooting_curl_refreshes_liveness_only(
    portal: Portal, tenant: SeededCompany
) -> None:
    assert heartbeat(portal, tenant, camera_payload("gate-camera-1")).status_code == 200
    # curl -d sends application/x-www-form-urlencoded; the portal parses the body as JSON anyway.
    r = httpx.post(
        f"{portal.url}/api/pod/heartbeat",
        headers={**tenant.pod_auth, "Content-Type": "application/x-www-form-urlencoded"},
        content=b'{"pod_id":"main-gate-pod"}',
    )
    assert r.status_code == 200, r.text
    cams = httpx.get(f"{portal.url}/api/cameras", headers=portal.login(tenant)).json()["cameras"]
    assert [(c["id"], c["status"], c["pod_ip"]) for c in cams] == [
        ("gate-camera-1", "active", "192.168.1.100")
    ]


def test_other_company_sees_nothing(portal: Portal, tenant: SeededCompany) -> None:
    assert heartbeat(portal, tenant, camera_payload("gate-camera-1")).status_code == 200
    # Same slugs in the other company: ids collide, data must not.
    other = portal.company()
    other_user = portal.login(other)
    assert httpx.get(f"{portal.url}/api/cameras", headers=other_user).json()["cameras"] == []
    pods = httpx.get(f"{portal.url}/api/pods", headers=other_user).json()["pods"]
    assert [(p["pod_id"], p["status"], p["ip_address"]) for p in pods] == [
        ("main-gate-pod", "offline", None)
    ]
    # The other company's key cannot heartbeat into the first company's pod either.
    assert heartbeat(portal, other, camera_payload("intruder")).status_code == 200
    mine = httpx.get(f"{portal.url}/api/cameras", headers=portal.login(tenant)).json()["cameras"]
    assert [c["id"] for c in mine] == ["gate-camera-1"]
    filtered = httpx.get(
        f"{portal.url}/api/cameras", headers=other_user, params={"pod_id": "main-gate-pod"}
    ).json()["cameras"]
    assert [c["id"] for c in filtered] == ["intruder"]


def test_unreported_camera_becomes_inactive_never_deleted(
    portal: Portal, tenant: SeededCompany
) -> None:
    user = portal.login(tenant)
    assert heartbeat(portal, tenant, camera_payload("cam-a", "cam-b")).status_code == 200
    assert heartbeat(portal, tenant, camera_payload("cam-b")).status_code == 200
    cams = httpx.get(f"{portal.url}/api/cameras", headers=user).json()["cameras"]
    assert {c["id"]: c["status"] for c in cams} == {"cam-a": "inactive", "cam-b": "active"}
    active = httpx.get(f"{portal.url}/api/cameras", headers=user, params={"status": "active"})
    assert [c["id"] for c in active.json()["cameras"]] == ["cam-b"]
    assert heartbeat(portal, tenant, camera_payload()).status_code == 200
    cams = httpx.get(f"{portal.url}/api/cameras", headers=user).json()["cameras"]
    assert {c["id"]: c["status"] for c in cams} == {"cam-a": "inactive", "cam-b": "inactive"}
    # Reported again: active again.
    assert heartbeat(portal, tenant, camera_payload("cam-a")).status_code == 200
    cams = httpx.get(f"{portal.url}/api/cameras", headers=user).json()["cameras"]
    assert {c["id"]: c["status"] for c in cams} == {"cam-a": "active", "cam-b": "inactive"}


def test_changes_are_applied_and_repeat_only_refreshes(
    portal: Portal, tenant: SeededCompany
) -> None:
    user = portal.login(tenant)
    payload = camera_payload("cam-a")
    assert heartbeat(portal, tenant, payload).status_code == 200
    first = httpx.get(f"{portal.url}/api/pods", headers=user).json()["pods"][0]["last_heartbeat"]
    assert heartbeat(portal, tenant, payload).status_code == 200  # unchanged: fast path
    second = httpx.get(f"{portal.url}/api/pods", headers=user).json()["pods"][0]["last_heartbeat"]
    assert datetime.fromisoformat(second) > datetime.fromisoformat(first)

    moved = camera_payload("cam-a", ip="fd7a:115c:a1e0::5", stream_port=8443)
    moved["cameras"][0]["status"] = "error"  # type: ignore[index]
    moved["cameras"][0]["error"] = "rtsp://admin:hunter2@10.0.0.5/s timed out"  # type: ignore[index]
    assert heartbeat(portal, tenant, moved).status_code == 200
    cam = httpx.get(f"{portal.url}/api/cameras", headers=user).json()["cameras"][0]
    assert cam["stream_url"] == "http://[fd7a:115c:a1e0::5]:8443/stream"
    assert cam["pod_ip"] == "fd7a:115c:a1e0::5"
    assert cam["status"] == "error"
    assert cam["streamable"] is False
    assert "hunter2" not in cam["error"]


def test_rtsp_credentials_are_not_stored_or_returned(portal: Portal, tenant: SeededCompany) -> None:
    payload = camera_payload("cam-a")
    payload["cameras"][0]["rtsp_url"] = "rtsp://admin:s3cretpw@192.168.1.50:554/stream"  # type: ignore[index]
    assert heartbeat(portal, tenant, payload).status_code == 200
    rows = sql(
        portal.db_url,
        "SELECT c.rtsp_url FROM cameras c JOIN pods p ON p.id = c.pod_id "
        "WHERE p.company_id = :company",
        company=tenant.company_id.replace("-", "")
        if "sqlite" in portal.db_url
        else tenant.company_id,
    )
    assert rows == [("rtsp://192.168.1.50:554/stream",)]
    user = portal.login(tenant)
    for path in ("/api/cameras", "/api/pods", "/api/pods/main-gate-pod"):
        text = httpx.get(f"{portal.url}{path}", headers=user).text
        assert "s3cretpw" not in text and "rtsp://" not in text
        assert tenant.stream_token_secret not in text and tenant.api_key not in text


def test_pod_detail_is_tenant_scoped(portal: Portal, tenant: SeededCompany) -> None:
    other = portal.company(pod_id="other-pod")
    r = httpx.get(f"{portal.url}/api/pods/other-pod", headers=portal.login(tenant))
    assert r.status_code == 404
    assert r.json()["error"] == "not_found"
    r = httpx.get(f"{portal.url}/api/pods/other-pod", headers=portal.login(other))
    assert r.status_code == 200
    assert r.json()["pod_id"] == "other-pod"


def test_site_filter(portal: Portal, tenant: SeededCompany) -> None:
    assert heartbeat(portal, tenant, camera_payload("cam-a")).status_code == 200
    user = portal.login(tenant)
    for site in (tenant.site_name, tenant.site_id):
        r = httpx.get(f"{portal.url}/api/cameras", headers=user, params={"site": site})
        assert [c["id"] for c in r.json()["cameras"]] == ["cam-a"]
    r = httpx.get(f"{portal.url}/api/cameras", headers=user, params={"site": "Elsewhere"})
    assert r.json()["cameras"] == []
