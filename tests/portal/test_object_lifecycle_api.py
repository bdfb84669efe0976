"""The lifecycle of communities, sites, PODs and cameras through the JSON API (docs/portal.md,
Object lifecycle), on SQLite and PostgreSQL with the portal in-process: every action, its
refusals, another company's rows as 404, and the change trail (who, what; never a secret)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.inprocess import AppPortal, app_portal
from tests.support.portal import SeededCompany, seed_company, sql

HB = "/api/pod/heartbeat"
#: no access cache: a refusal is immediate (the cache's grace is documented, not tested here)
ENV = {"PLATEBRIDGE_STREAM_AUTH_CACHE_SECONDS": "0", "PLATEBRIDGE_POD_NETWORKS": "10.0.0.0/8"}


@pytest.fixture(scope="module")
def portal(db_url: str) -> Iterator[AppPortal]:
    with app_portal(db_url, ENV) as p:
        yield p


@pytest.fixture
def tenant(portal: AppPortal) -> SeededCompany:
    return seed_company(portal.db_url)


def admin(portal: AppPortal, t: SeededCompany) -> dict[str, str]:
    return portal.login(t.email, t.password)


def beat(
    portal: AppPortal, pod_id: str, key: str, *cameras: str, name: str = "Camera"
) -> httpx.Response:
    body = {
        "pod_id": pod_id,
        "ip_address": "10.0.0.5",
        "firmware_version": "1.0.0",
        "status": "online",
        "cameras": [
            {"camera_id": c, "name": f"{name} {c}", "rtsp_url": "rtsp://10.0.0.9/s"}
            for c in cameras
        ],
    }
    return portal.client.post(HB, headers={"Authorization": f"Bearer {key}"}, json=body)


def camera_names(portal: AppPortal, auth: dict[str, str]) -> dict[str, str]:
    r = portal.client.get("/api/cameras", headers=auth)
    assert r.status_code == 200, r.text
    return {c["id"]: c["name"] for c in r.json()["cameras"]}


def changes(portal: AppPortal, auth: dict[str, str]) -> list[dict[str, Any]]:
    r = portal.client.get("/api/changes", headers=auth)
    assert r.status_code == 200, r.text
    rows: list[dict[str, Any]] = r.json()["changes"]
    return rows


def error(r: httpx.Response, status: int, code: str) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"] == code, body
    detail: str = body["detail"]
    return detail


def test_communities_and_sites(portal: AppPortal, tenant: SeededCompany) -> None:
    auth = admin(portal, tenant)
    c = portal.client
    r = c.post("/api/communities", headers=auth, json={"name": "North"})
    assert r.status_code == 201, r.text
    north = r.json()["community_id"]
    error(c.post("/api/communities", headers=auth, json={"name": "North"}), 409, "name_taken")
    r = c.post("/api/sites", headers=auth, json={"community_id": north, "name": "Gate A"})
    assert r.status_code == 201, r.text
    gate_a = r.json()["site_id"]
    assert r.json()["community"] == "North" and r.json()["pods"] == 0

    listed = c.get("/api/communities", headers=auth).json()["communities"]
    assert {x["name"] for x in listed} >= {"North"}
    r = c.patch(f"/api/sites/{gate_a}", headers=auth, json={"name": "Gate B"})
    assert r.status_code == 200 and r.json()["name"] == "Gate B"
    r = c.patch(f"/api/communities/{north}", headers=auth, json={"name": "Nord"})
    assert r.json()["name"] == "Nord" and r.json()["sites"][0]["name"] == "Gate B"
    error(c.patch(f"/api/sites/{gate_a}", headers=auth, json={"name": ""}), 422, "validation_error")

    # The seeded site holds the seeded POD: neither it nor its community can go.
    detail = error(c.delete(f"/api/sites/{tenant.site_id}", headers=auth), 409, "not_empty")
    assert "1 POD" in detail
    detail = error(
        c.delete(f"/api/communities/{tenant.community_id}", headers=auth), 409, "not_empty"
    )
    assert "POD" in detail
    # An empty community goes with its empty sites.
    r = c.delete(f"/api/communities/{north}", headers=auth)
    assert r.status_code == 200, r.text
    assert c.get(f"/api/sites/{gate_a}", headers=auth).status_code == 404
    trail = [x["action"] for x in changes(portal, auth)]
    for action in ("community.create", "site.create", "site.rename", "community.rename"):
        assert action in trail
    assert trail.index("community.delete") < trail.index("site.delete")  # newest first
    assert all(x["actor"] == tenant.email for x in changes(portal, auth))


def test_pod_lifecycle(portal: AppPortal, tenant: SeededCompany) -> None:
    auth = admin(portal, tenant)
    c = portal.client
    r = c.post(
        "/api/pods",
        headers=auth,
        json={"site_id": tenant.site_id, "new_pod_id": "side-pod", "name": "Side"},
    )
    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    created = r.json()
    key, secret = created["api_key"], created["stream_token_secret"]
    assert key in created["config_yaml"] and created["site_id"] == tenant.site_id
    error(
        c.post(
            "/api/pods", headers=auth, json={"site_id": tenant.site_id, "new_pod_id": "side-pod"}
        ),
        409,
        "name_taken",
    )
    assert beat(portal, "side-pod", key, "cam-1").status_code == 200

    r = c.post("/api/pods/side-pod/rename", headers=auth, json={"name": "Side gate"})
    assert r.json()["name"] == "Side gate"
    community = c.post("/api/communities", headers=auth, json={"name": f"Far {uuid.uuid4()}"})
    far = c.post(
        "/api/sites",
        headers=auth,
        json={"community_id": community.json()["community_id"], "name": "Far site"},
    ).json()["site_id"]
    r = c.post("/api/pods/side-pod/move", headers=auth, json={"site_id": far})
    assert r.status_code == 200 and r.json()["site"] == "Far site", r.text
    assert "note" not in r.json()  # it has a pod key: the move does not break its heartbeat
    assert beat(portal, "side-pod", key, "cam-1").status_code == 200

    # Decommission: confirmation, keys, secret, cameras, heartbeat, stream token, proxy.
    token = c.post(
        "/api/pod/stream-token", headers=auth, json={"pod_id": "side-pod", "camera_id": "cam-1"}
    ).json()["token"]
    error(c.post("/api/pods/side-pod/decommission", headers=auth, json={}), 422,
          "confirmation_required")  # fmt: skip
    r = c.post("/api/pods/side-pod/decommission", headers=auth, json={"confirm": "side-pod"})
    assert r.status_code == 200, r.text
    state = r.json()
    assert state["decommissioned"] and state["active_keys"] == 0
    assert state["tunnel_closed"] is False  # no tunnel open in this test
    secret_now = sql(
        portal.db_url, "SELECT stream_token_secret FROM pods WHERE pod_id = 'side-pod'"
    )
    assert secret_now[0][0] != secret
    detail = error(beat(portal, "side-pod", key, "cam-1"), 403, "pod_decommissioned")
    assert "decommissioned" in detail
    assert "cam-1" not in camera_names(portal, auth)
    pods = c.get("/api/pods", headers=auth).json()["pods"]
    assert next(p for p in pods if p["pod_id"] == "side-pod")["status"] == "offline"
    r = c.post(
        "/api/pod/stream-token", headers=auth, json={"pod_id": "side-pod", "camera_id": "cam-1"}
    )
    assert r.status_code == 404, r.text
    r = c.get("/api/pod/proxy-stream/side-pod", params={"camera_id": "cam-1", "token": token})
    assert r.status_code == 404, r.text  # the client carries the login cookie: by session
    with httpx.Client(transport=c._transport, base_url=c.base_url) as bare:  # token only
        r = bare.get(
            "/api/pod/proxy-stream/side-pod", params={"camera_id": "cam-1", "token": token}
        )
    assert r.status_code == 401 and r.json()["error"] == "invalid_stream_token", r.text
    r = c.get("/api/pod/proxy-stream/side-pod", params={"camera_id": "cam-1"}, headers=auth)
    assert r.status_code == 404, r.text

    # Re-enable: a new key and secret (shown once); the old key stays refused.
    error(c.post(f"/api/pods/{tenant.pod_id}/enable", headers=auth), 409, "pod_not_decommissioned")
    r = c.post("/api/pods/side-pod/enable", headers=auth)
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store", r.text
    new_key = r.json()["api_key"]
    assert new_key != key and r.json()["stream_token_secret"] not in (secret, secret_now[0][0])
    assert beat(portal, "side-pod", key, "cam-1").status_code == 401
    assert beat(portal, "side-pod", new_key, "cam-1").status_code == 200
    assert "cam-1" in camera_names(portal, auth)

    # Delete: only a decommissioned pod.
    error(c.delete("/api/pods/side-pod", headers=auth), 409, "pod_not_decommissioned")
    c.post("/api/pods/side-pod/decommission", headers=auth, json={"confirm": "side-pod"})
    assert c.delete("/api/pods/side-pod", headers=auth).status_code == 200
    assert c.get("/api/pods/side-pod/lifecycle", headers=auth).status_code == 404

    trail = changes(portal, auth)
    actions = [x["action"] for x in trail]
    for action in ("pod.create", "pod.rename", "pod.move", "pod.decommission", "pod.reenable"):
        assert action in actions
    assert actions[0] == "pod.delete"
    text = json.dumps(trail)
    for leaked in (key, new_key, secret):
        assert leaked not in text


def test_enrollment_key_pod_decommissioned(portal: AppPortal, tenant: SeededCompany) -> None:
    """A pod registered by a site enrollment key is refused too (that key is not revoked)."""
    auth = admin(portal, tenant)
    r = portal.client.post(
        "/pods/enrollment-key", headers=auth, data={"site_id": tenant.site_id}
    )  # the page form (bearer: no CSRF needed)
    assert r.status_code == 200, r.text
    key = _shown_key(r.text)
    assert beat(portal, "enrolled-pod", key, "e-cam").status_code == 200
    r = portal.client.post(
        "/api/pods/enrolled-pod/decommission", headers=auth, json={"confirm": "enrolled-pod"}
    )
    assert r.status_code == 200, r.text
    error(beat(portal, "enrolled-pod", key, "e-cam"), 403, "pod_decommissioned")
    r = portal.client.post(
        "/api/pod/enroll",
        headers={"Authorization": f"Bearer {key}"},
        json={"pod_id": "enrolled-pod"},
    )
    assert r.status_code == 403 and r.json()["error"] == "pod_decommissioned", r.text


def _shown_key(page: str) -> str:
    marker = 'id="shown-key" class="mono" readonly value="'
    start = page.index(marker) + len(marker)
    return page[start : page.index('"', start)]


def test_cameras_display_name_and_removal(portal: AppPortal, tenant: SeededCompany) -> None:
    auth = admin(portal, tenant)
    c = portal.client
    assert beat(portal, tenant.pod_id, tenant.api_key, "cam-a", "cam-b").status_code == 200
    r = c.patch(
        f"/api/cameras/{tenant.pod_id}/cam-a", headers=auth, json={"display_name": "Front door"}
    )
    assert r.status_code == 200 and r.json()["name"] == "Front door", r.text
    # The POD renames it in its config: the list keeps the admin's name, the POD's is stored.
    assert (
        beat(portal, tenant.pod_id, tenant.api_key, "cam-a", "cam-b", name="Cam").status_code == 200
    )
    assert camera_names(portal, auth) == {"cam-a": "Front door", "cam-b": "Cam cam-b"}
    r = c.get(f"/api/cameras/{tenant.pod_id}/cam-a", headers=auth)
    assert r.json()["reported_name"] == "Cam cam-a" and r.json()["reported"] is True
    found = c.get("/api/cameras", headers=auth, params={"q": "front"}).json()["cameras"]
    assert [x["id"] for x in found] == ["cam-a"]

    detail = error(c.delete(f"/api/cameras/{tenant.pod_id}/cam-a", headers=auth), 409,
                   "camera_reported")  # fmt: skip
    assert "still reported" in detail
    assert beat(portal, tenant.pod_id, tenant.api_key, "cam-b").status_code == 200  # cam-a gone
    assert c.get(f"/api/cameras/{tenant.pod_id}/cam-a", headers=auth).json()["reported"] is False
    assert c.delete(f"/api/cameras/{tenant.pod_id}/cam-a", headers=auth).status_code == 200
    assert set(camera_names(portal, auth)) == {"cam-b"}
    assert beat(portal, tenant.pod_id, tenant.api_key, "cam-b").status_code == 200  # fast path
    assert set(camera_names(portal, auth)) == {"cam-b"}
    # Reported again: back, with the display name the admin had given it.
    assert beat(portal, tenant.pod_id, tenant.api_key, "cam-a", "cam-b").status_code == 200
    assert camera_names(portal, auth)["cam-a"] == "Front door"
    r = c.get(f"/api/cameras/{tenant.pod_id}/cam-a", headers=auth)
    assert r.json()["reported_name"] == "Camera cam-a" and r.json()["reported"] is True
    r = c.patch(f"/api/cameras/{tenant.pod_id}/cam-b", headers=auth, json={"display_name": None})
    assert r.json()["name"] == "Camera cam-b"
    actions = [x["action"] for x in changes(portal, auth)]
    assert actions[:2] == ["camera.rename", "camera.remove"]


def test_removed_camera_comes_back_with_its_display_name(
    portal: AppPortal, tenant: SeededCompany
) -> None:
    """Each removal keeps the display name the camera has then (or none); the heartbeat that
    reports the camera again restores it once, and later heartbeats never touch it."""
    auth = admin(portal, tenant)
    c = portal.client
    pod, key = tenant.pod_id, tenant.api_key
    cam = f"/api/cameras/{pod}/cam-x"

    def remove_x() -> None:
        assert beat(portal, pod, key, "cam-y").status_code == 200  # cam-x not reported
        assert c.delete(cam, headers=auth).status_code == 200
        assert "cam-x" not in camera_names(portal, auth)

    def back() -> dict[str, str]:
        assert beat(portal, pod, key, "cam-x", "cam-y").status_code == 200
        return camera_names(portal, auth)

    assert beat(portal, pod, key, "cam-x", "cam-y").status_code == 200
    assert c.patch(cam, headers=auth, json={"display_name": "Loading bay"}).status_code == 200
    remove_x()
    assert back()["cam-x"] == "Loading bay"
    # renamed after it came back, removed again: the newer name comes back
    assert c.patch(cam, headers=auth, json={"display_name": "Dock 2"}).status_code == 200
    remove_x()
    assert back() == {"cam-x": "Dock 2", "cam-y": "Camera cam-y"}
    # the name cleared before the removal: it comes back with the POD's name only
    assert c.patch(cam, headers=auth, json={"display_name": ""}).status_code == 200
    remove_x()
    assert back()["cam-x"] == "Camera cam-x"
    # a camera never renamed, and another pod's camera of the same id: untouched by it all
    assert c.get(f"/api/cameras/{pod}/cam-y", headers=auth).json()["display_name"] is None
    assert kept_names(portal, tenant) == 0
    # a pod deleted takes the kept names with it
    assert c.patch(cam, headers=auth, json={"display_name": "Gone"}).status_code == 200
    remove_x()
    assert kept_names(portal, tenant) == 1
    r = c.post(f"/api/pods/{pod}/decommission", headers=auth, json={"confirm": pod})
    assert r.status_code == 200, r.text
    assert c.delete(f"/api/pods/{pod}", headers=auth).status_code == 200
    assert kept_names(portal, tenant) == 0


def kept_names(portal: AppPortal, t: SeededCompany) -> int:
    """Display names kept for removed cameras of the tenant's pods (``camera_names``)."""
    rows = sql(
        portal.db_url,
        "SELECT count(*) FROM camera_names n JOIN pods p ON p.id = n.pod_id "
        "JOIN users u ON u.company_id = p.company_id WHERE u.email = :email",
        email=t.email,
    )
    return int(rows[0][0])


def test_other_company_is_404_and_viewer_403(portal: AppPortal, tenant: SeededCompany) -> None:
    other = seed_company(portal.db_url)
    assert beat(portal, other.pod_id, other.api_key, "their-cam").status_code == 200
    auth = admin(portal, tenant)
    c = portal.client
    theirs = [
        ("GET", f"/api/sites/{other.site_id}", None),
        ("PATCH", f"/api/sites/{other.site_id}", {"name": "x"}),
        ("DELETE", f"/api/sites/{other.site_id}", None),
        ("GET", f"/api/communities/{other.community_id}", None),
        ("DELETE", f"/api/communities/{other.community_id}", None),
        ("POST", "/api/sites", {"community_id": other.community_id, "name": "x"}),
        ("POST", "/api/pods", {"site_id": other.site_id, "new_pod_id": "x-pod"}),
        ("POST", f"/api/pods/{tenant.pod_id}/move", {"site_id": other.site_id}),
        ("PATCH", f"/api/cameras/{other.pod_id}/their-cam", {"display_name": "x"}),
        ("DELETE", f"/api/cameras/{other.pod_id}/their-cam", None),
    ]
    for method, path, body in theirs:
        r = c.request(method, path, headers=auth, json=body)
        assert r.status_code == 404, (method, path, r.text)
    # other's pod id is the same wire id as ours ("main-gate-pod"): ours is the one decommissioned
    r = c.post(
        f"/api/pods/{other.pod_id}/decommission", headers=auth, json={"confirm": other.pod_id}
    )
    assert r.status_code == 200 and r.json()["company_id"] == tenant.company_id
    assert beat(portal, other.pod_id, other.api_key, "their-cam").status_code == 200
    assert other.company_id not in json.dumps(changes(portal, auth))
