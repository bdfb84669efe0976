"""The one-statement camera page (``listing_query.camera_page_query``) at its edges: pods
without cameras in the middle of the order (the page's pods subquery must not stop short),
a pod with more matching cameras than a page (a search's total is every match, not a page
per pod), the status filter, and cursors that land on the last camera of a pod.

Fast lane: the portal in-process on SQLite and PostgreSQL (the two statements differ:
``LATERAL`` on PostgreSQL, a limited pods subquery on SQLite).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.portal.test_listing_api import get, heartbeat, keys_of, walk
from tests.support.inprocess import AppPortal
from tests.support.portal import SeededCompany, in_session, seed_company

#: pod id → how many cameras it reports (0: none — created, never reporting cameras)
PODS = {"e-a": 3, "e-b": 0, "e-c": 0, "e-d": 60, "e-e": 1, "e-f": 0, "e-g": 2}


def doc(pod_id: str, n: int) -> dict[str, Any]:
    cams = [
        {
            "camera_id": f"c{i:03d}",
            "name": f"Deep camera {i}" if pod_id == "e-d" else f"Cam {pod_id} {i}",
            "rtsp_url": f"rtsp://10.0.0.9:554/s{i}",
            "status": "error" if i % 10 == 0 else "active",
            **({"error": "stalled"} if i % 10 == 0 else {}),
        }
        for i in range(n)
    ]
    return {"pod_id": pod_id, "ip_address": "10.0.0.9", "status": "online", "cameras": cams}


@pytest.fixture(scope="module")
def world(app_portal: AppPortal, db_url: str) -> tuple[SeededCompany, dict[str, str]]:
    from platebridge.portal.services import admin

    company = seed_company(db_url, pod_id="e-unused")
    keys: dict[str, str] = {}

    async def build(s: Any) -> None:
        for pod_id in PODS:
            created = await admin.create_pod(s, company.site_id, pod_id, pod_id.upper())
            created.pod.stream_mode = "proxy"
            keys[pod_id] = created.api_key

    asyncio.run(in_session(db_url, build))
    for pod_id, n in PODS.items():
        heartbeat(app_portal, keys[pod_id], doc(pod_id, n))
    return company, app_portal.login(company.email, company.password)


def expected(status: str | None = None) -> list[tuple[str, str]]:
    out = []
    for pod_id in sorted(PODS):
        for i in range(PODS[pod_id]):
            cam_status = "error" if i % 10 == 0 else "active"
            if status is None or cam_status == status:
                out.append((pod_id, f"c{i:03d}"))
    return out


@pytest.mark.parametrize("limit", [1, 2, 3, 4, 7, 100, 500])
def test_walk_over_pods_without_cameras_is_complete(
    app_portal: AppPortal, world: tuple[SeededCompany, dict[str, str]], limit: int
) -> None:
    company, auth = world
    first = get(app_portal, "/api/cameras", auth, limit=limit).json()
    assert first["total"] == len(expected())
    cams = walk(app_portal, auth, limit=limit)
    assert [(pod, cam) for _, pod, cam in keys_of(cams)] == expected()
    assert {c["site"] for c in cams} == {company.site_name}


@pytest.mark.parametrize("limit", [3, 100])
def test_status_filter_walk_and_total(
    app_portal: AppPortal, world: tuple[SeededCompany, dict[str, str]], limit: int
) -> None:
    _, auth = world
    for status in ("error", "active"):
        body = get(app_portal, "/api/cameras", auth, status=status, limit=limit).json()
        assert body["total"] == len(expected(status))
        cams = walk(app_portal, auth, status=status, limit=limit)
        assert [(pod, cam) for _, pod, cam in keys_of(cams)] == expected(status)


def test_search_total_counts_every_match_of_a_big_pod(
    app_portal: AppPortal, world: tuple[SeededCompany, dict[str, str]]
) -> None:
    _, auth = world
    body = get(app_portal, "/api/cameras", auth, q="deep camera", limit=10).json()
    assert body["total"] == 60  # all of pod e-d's cameras, more than a page
    assert len(body["cameras"]) == 10 and body["next_cursor"]
    cams = walk(app_portal, auth, q="deep camera", limit=25)
    assert [c["id"] for c in cams] == [f"c{i:03d}" for i in range(60)]
    # the pod's own name matches: all its cameras, whatever their names
    by_pod = walk(app_portal, auth, q="E-D", limit=100)
    assert len(by_pod) == 60 and {c["pod_id"] for c in by_pod} == {"e-d"}


def test_state_filter_walk(
    app_portal: AppPortal, world: tuple[SeededCompany, dict[str, str]]
) -> None:
    _, auth = world
    live = walk(app_portal, auth, state="live", limit=25)
    error = walk(app_portal, auth, state="error", limit=25)
    assert [(c["pod_id"], c["id"]) for c in live] == expected("active")
    assert [(c["pod_id"], c["id"]) for c in error] == expected("error")
    body = get(app_portal, "/api/cameras", auth, state="error", limit=2).json()
    assert body["total"] == len(expected("error"))
