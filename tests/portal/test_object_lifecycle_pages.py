"""The lifecycle forms of the pages (``/sites``, ``/pods/{pod}/cameras``, the PODs page), in-process
on SQLite and PostgreSQL: each action, refusals re-rendered with their message and status,
another company's rows as the 404 page, the change trail on ``/audit``."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.inprocess import AppPortal, app_portal
from tests.support.portal import SeededCompany, seed_company


@pytest.fixture(scope="module")
def portal(db_url: str) -> Iterator[AppPortal]:
    with app_portal(db_url) as p:
        yield p


@pytest.fixture
def tenant(portal: AppPortal) -> SeededCompany:
    return seed_company(portal.db_url)


def beat(portal: AppPortal, t: SeededCompany, *cameras: str) -> None:
    body = {
        "pod_id": t.pod_id,
        "ip_address": "10.0.0.5",
        "status": "online",
        "cameras": [{"camera_id": c, "name": f"Cam {c}"} for c in cameras],
    }
    assert (
        portal.client.post("/api/pod/heartbeat", headers=t.pod_auth, json=body).status_code == 200
    )


def post(portal: AppPortal, auth: dict[str, str], path: str, **form: str) -> httpx.Response:
    return portal.client.post(path, headers=auth, data=form, follow_redirects=False)


def test_sites_page(portal: AppPortal, tenant: SeededCompany) -> None:
    auth = portal.login(tenant.email, tenant.password)
    assert post(portal, auth, "/sites/communities", name="East").status_code == 303
    communities = portal.client.get("/api/communities", headers=auth).json()["communities"]
    east = next(c for c in communities if c["name"] == "East")["community_id"]
    assert post(portal, auth, "/sites/new", community_id=east, name="Dock").status_code == 303
    page = portal.client.get("/sites", headers=auth)
    assert page.status_code == 200 and "Dock" in page.text and "East" in page.text
    site = next(s for s in portal.client.get("/api/sites", headers=auth).json()["sites"]
                if s["name"] == "Dock")["site_id"]  # fmt: skip
    assert post(portal, auth, f"/sites/{site}/rename", name="Quay").status_code == 303
    r = post(portal, auth, f"/sites/{tenant.site_id}/delete")
    assert r.status_code == 409 and "still holds 1 POD" in r.text
    r = post(portal, auth, "/sites/communities", name="East")
    assert r.status_code == 409 and "already exists" in r.text
    assert post(portal, auth, f"/sites/communities/{east}/delete").status_code == 303
    assert "Quay" not in portal.client.get("/sites", headers=auth).text
    other = seed_company(portal.db_url)
    assert post(portal, auth, f"/sites/{other.site_id}/delete").status_code == 404
    assert (
        post(portal, auth, "/sites/new", community_id=other.community_id, name="x").status_code
        == 404
    )
    audit = portal.client.get("/audit", headers=auth).text
    for action in ("community.create", "site.create", "site.rename", "community.delete"):
        assert action in audit


def test_pod_cameras_page_and_pod_forms(portal: AppPortal, tenant: SeededCompany) -> None:
    auth = portal.login(tenant.email, tenant.password)
    beat(portal, tenant, "c1", "c2")
    base = f"/pods/{tenant.pod_id}/cameras"
    r = post(portal, auth, f"{base}/c1/rename", display_name="Loading bay")
    assert r.status_code == 303
    assert "Loading bay" in portal.client.get("/cameras", headers=auth).text
    r = post(portal, auth, f"{base}/c1/remove")
    assert r.status_code == 409 and "still reported" in r.text
    beat(portal, tenant, "c2")
    page = portal.client.get(base, headers=auth).text
    assert "not since" in page and "/c1/remove" in page and "/c2/remove" not in page
    assert post(portal, auth, f"{base}/c1/remove").status_code == 303
    assert "Loading bay" not in portal.client.get(base, headers=auth).text

    assert post(portal, auth, f"/pods/{tenant.pod_id}/rename", name="Gate 2").status_code == 303
    r = post(portal, auth, f"/pods/{tenant.pod_id}/decommission", confirm="wrong")
    assert r.status_code == 422 and "to confirm" in r.text
    r = post(portal, auth, f"/pods/{tenant.pod_id}/decommission", confirm=tenant.pod_id)
    assert r.status_code == 303
    pods = portal.client.get("/pods", headers=auth).text
    assert 'data-decommissioned="true"' in pods and "Re-enable" in pods
    r = post(portal, auth, f"/pods/{tenant.pod_id}/enable")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    assert 'id="shown-key"' in r.text and "pbk_" in r.text
    other = seed_company(portal.db_url, pod_id="their-pod")
    r = post(portal, auth, "/pods/their-pod/decommission", confirm="their-pod")
    assert r.status_code == 404
    r = post(portal, auth, f"/pods/{tenant.pod_id}/move", site_id=other.site_id)
    assert r.status_code == 404
    audit = portal.client.get("/audit", headers=auth).text
    for action in ("camera.rename", "camera.remove", "pod.rename", "pod.decommission"):
        assert action in audit
