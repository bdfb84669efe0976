"""Heartbeat ``recording`` and ``disk`` on the portal (issue 13 §2): stored per camera and per
pod, listed by ``/api/cameras``, and shown truthfully on the cameras page — a full disk is named,
not shown as "on"."""

from __future__ import annotations

import uuid
from typing import Any

from tests.portal.test_heartbeat import camera_payload
from tests.support.inprocess import AppPortal
from tests.support.portal import SeededCompany

HB = "/api/pod/heartbeat"
GB = 1_000_000_000


def _recording(state: str, **extra: Any) -> dict[str, Any]:
    return {"enabled": state != "off", "state": state, **extra}


def test_recording_and_disk_listed_and_shown(app_portal: AppPortal, tenant: SeededCompany) -> None:
    on, full, old = (f"cam-{uuid.uuid4().hex[:8]}" for _ in range(3))
    body = camera_payload(on, full, old, disk={"total": 64 * GB, "free": 12 * GB})
    cams = body["cameras"]
    assert isinstance(cams, list)
    cams[0]["recording"] = _recording(
        "recording", oldest=1_700_000_000, newest=1_700_086_400, bytes=14 * GB, gaps_24h=2
    )
    cams[1]["recording"] = _recording("disk_full", bytes=50 * GB)  # an older POD: none at all
    r = app_portal.client.post(HB, headers=tenant.pod_auth, json=body)
    assert r.status_code == 200, r.text
    user = app_portal.login(tenant.email, tenant.password)
    items = {
        c["id"]: c for c in app_portal.client.get("/api/cameras", headers=user).json()["cameras"]
    }
    assert items[on]["recording"] == {
        "enabled": True,
        "state": "recording",
        "oldest": 1_700_000_000,
        "newest": 1_700_086_400,
        "bytes": 14 * GB,
        "gaps_24h": 2,
    }
    assert items[full]["recording"]["state"] == "disk_full"
    assert items[old]["recording"] is None
    assert items[on]["pod_disk"] == {"total": 64 * GB, "free": 12 * GB}

    page = app_portal.client.get("/cameras", headers=user)
    assert page.status_code == 200
    html = page.text
    assert "footage from" in html and "14.0 GB" in html and "2 gaps in 24 h" in html
    assert "paused: the POD's disk is full" in html
    assert "12.0 GB free of 64.0 GB" in html


def test_a_bad_recording_value_is_refused(app_portal: AppPortal, tenant: SeededCompany) -> None:
    body = camera_payload(f"cam-{uuid.uuid4().hex[:8]}")
    cams = body["cameras"]
    assert isinstance(cams, list)
    cams[0]["recording"] = {"enabled": True, "state": "exploded"}
    r = app_portal.client.post(HB, headers=tenant.pod_auth, json=body)
    assert r.status_code == 422 and r.json()["error"] == "validation_error"
