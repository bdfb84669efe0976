"""``GET /api/cameras`` and ``GET /api/pods`` one page at a time: keyset cursors (signed,
scoped to the company and the filters), stable order, filters, totals, limits.

Fast lane: the portal in-process (tests/support/inprocess.py) on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from platebridge.portal.pages.views import camera_badge
from tests.support.inprocess import AppPortal
from tests.support.portal import SeededCompany, age_pods, in_session, seed_company

HB = "/api/pod/heartbeat"
CAMS_PER_POD = 40


@dataclass
class World:
    a: SeededCompany
    b: SeededCompany
    a_auth: dict[str, str]
    b_auth: dict[str, str]
    keys: dict[str, str]  # pod_id → API key (company A)
    sites: dict[str, str]  # site name → id (company A)
    communities: dict[str, str]  # community name → id (company A)


def cameras_doc(pod_id: str, n: int, *, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    cams = [
        {
            "camera_id": f"cam-{i:03d}",
            "name": f"Gate camera {i}" if i % 2 else f"Lobby Ünit {i}",
            "rtsp_url": f"rtsp://10.0.0.9:554/s{i}",
            "position": "",
        }
        for i in range(n)
    ]
    cams += [{"camera_id": c, "name": f"Added {c}", "rtsp_url": "rtsp://10.0.0.9/x"} for c in extra]
    return {"pod_id": pod_id, "ip_address": "10.0.0.9", "status": "online", "cameras": cams}


def heartbeat(portal: AppPortal, key: str, doc: dict[str, Any]) -> None:
    r = portal.client.post(HB, headers={"Authorization": f"Bearer {key}"}, json=doc)
    assert r.status_code == 200, r.text


@pytest.fixture(scope="module")
def world(app_portal: AppPortal, db_url: str) -> World:
    from platebridge.portal.services import admin

    a = seed_company(db_url, pod_id="aa-unused")
    b = seed_company(db_url, pod_id="pod-a1")  # the same wire pod_id as one of A's
    keys: dict[str, str] = {}
    sites: dict[str, str] = {}
    communities: dict[str, str] = {}

    async def build(s: Any) -> None:
        north = await admin.create_community(s, a.company_id, "north")
        south = await admin.create_community(s, a.company_id, "south")
        communities.update(north=str(north.id), south=str(south.id))
        alpha = await admin.create_site(s, str(north.id), "alpha-site")
        beta = await admin.create_site(s, str(south.id), "beta-site")
        sites.update({"alpha-site": str(alpha.id), "beta-site": str(beta.id)})
        for site, pod_id in ((alpha, "pod-a1"), (alpha, "pod-a2"), (beta, "pod-b1")):
            created = await admin.create_pod(s, str(site.id), pod_id, f"POD {pod_id.upper()}")
            created.pod.stream_mode = "proxy"
            keys[pod_id] = created.api_key

    asyncio.run(in_session(db_url, build))
    for pod_id, key in keys.items():
        heartbeat(app_portal, key, cameras_doc(pod_id, CAMS_PER_POD))
    heartbeat(app_portal, b.api_key, cameras_doc("pod-a1", 5))
    return World(
        a, b, app_portal.login(a.email, a.password), app_portal.login(b.email, b.password),
        keys, sites, communities,
    )  # fmt: skip


def get(portal: AppPortal, path: str, auth: dict[str, str], **params: Any) -> httpx.Response:
    return portal.client.get(path, headers=auth, params=params)


def walk(
    portal: AppPortal, auth: dict[str, str], path: str = "/api/cameras", **params: Any
) -> list[dict[str, Any]]:
    kind = path.rsplit("/", 1)[-1]
    out: list[dict[str, Any]] = []
    cursor = None
    for _ in range(200):
        query = dict(params, **({"cursor": cursor} if cursor else {}))
        r = get(portal, path, auth, **query)
        assert r.status_code == 200, r.text
        body = r.json()
        out += body[kind]
        cursor = body["next_cursor"]
        if cursor is None:
            return out
    raise AssertionError("the walk did not end")


def keys_of(cams: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(c["site"], c["pod_id"], c["id"]) for c in cams]


def test_default_page_is_100_with_total_and_cursor(app_portal: AppPortal, world: World) -> None:
    body = get(app_portal, "/api/cameras", world.a_auth).json()
    assert set(body) == {"cameras", "next_cursor", "total", "limit"}
    assert len(body["cameras"]) == 100 and body["limit"] == 100
    assert body["total"] == 3 * CAMS_PER_POD
    assert isinstance(body["next_cursor"], str)
    spec_fields = {"id", "name", "stream_url", "status", "pod_id", "position", "pod_status"}
    assert spec_fields <= set(body["cameras"][0])
    last = get(app_portal, "/api/cameras", world.a_auth, cursor=body["next_cursor"]).json()
    assert len(last["cameras"]) == 20 and last["next_cursor"] is None
    assert last["total"] == 3 * CAMS_PER_POD


def test_walk_is_complete_and_in_a_stable_order(app_portal: AppPortal, world: World) -> None:
    cams = walk(app_portal, world.a_auth, limit=7)
    keys = keys_of(cams)
    assert len(keys) == 3 * CAMS_PER_POD == len(set(keys))
    assert keys == sorted(keys)  # site name, pod_id, camera_id (ASCII names: any collation)
    assert keys == keys_of(walk(app_portal, world.a_auth, limit=500))


def test_walk_while_cameras_are_added(app_portal: AppPortal, world: World) -> None:
    before = set(keys_of(walk(app_portal, world.a_auth, limit=500)))
    seen: list[tuple[str, str, str]] = []
    cursor = None
    added = False
    for n in range(100):
        params: dict[str, Any] = {"limit": 9, **({"cursor": cursor} if cursor else {})}
        body = get(app_portal, "/api/cameras", world.a_auth, **params).json()
        seen += keys_of(body["cameras"])
        if n == 2 and not added:  # mid-walk: new cameras before and after the cursor
            for pod_id in ("pod-a1", "pod-b1"):
                doc = cameras_doc(pod_id, CAMS_PER_POD, extra=("aaa-new", "zzz-new"))
                heartbeat(app_portal, world.keys[pod_id], doc)
            added = True
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert cursor is None
    assert len(seen) == len(set(seen)), "a camera was listed twice"
    assert before <= set(seen), "a camera that was there all along was skipped"
    assert ("beta-site", "pod-b1", "zzz-new") in seen  # after the cursor: it shows up
    assert seen == sorted(seen)


def test_filters(app_portal: AppPortal, world: World) -> None:
    auth = world.a_auth
    alpha = walk(app_portal, auth, site="alpha-site", limit=500)
    assert {c["site"] for c in alpha} == {"alpha-site"} and len(alpha) >= 2 * CAMS_PER_POD
    by_id = walk(app_portal, auth, site=world.sites["alpha-site"], limit=500)
    assert keys_of(by_id) == keys_of(alpha)
    south = walk(app_portal, auth, community="south", limit=500)
    assert {c["pod_id"] for c in south} == {"pod-b1"}
    assert keys_of(walk(app_portal, auth, community=world.communities["south"])) == keys_of(south)
    assert walk(app_portal, auth, community="nowhere") == []
    assert walk(app_portal, auth, site="alpha-site", community="south") == []
    one_pod = walk(app_portal, auth, pod_id="pod-a2", limit=500)
    assert {c["pod_id"] for c in one_pod} == {"pod-a2"}
    # q: case-insensitive substring of camera, pod or site names (ASCII on both databases)
    gate = walk(app_portal, auth, q="GATE camera 3", limit=500)
    assert gate and all("gate camera 3" in c["name"].lower() for c in gate)
    assert len(walk(app_portal, auth, q="pod-A2", limit=500)) == len(one_pod)
    assert len(walk(app_portal, auth, q="Beta-S")) == len(south)
    assert walk(app_portal, auth, q="%") == [] and walk(app_portal, auth, q="cam_0") == []
    assert walk(app_portal, auth, q="  ") == walk(app_portal, auth, limit=500)
    body = get(app_portal, "/api/cameras", auth, q="gate", limit=5).json()
    assert body["total"] == len(walk(app_portal, auth, q="gate", limit=500))


def test_state_filter_agrees_with_the_page_badge(
    app_portal: AppPortal, world: World, db_url: str
) -> None:
    """One company with every badge: live, offline (camera gone, POD silent), error (camera,
    POD); the SQL ``state`` filter sorts them as ``pages.views.camera_badge``."""
    from platebridge.portal.services import admin

    t = seed_company(db_url)
    auth = app_portal.login(t.email, t.password)
    doc = cameras_doc(t.pod_id, 3)
    doc["cameras"][1].update(status="error", error="stalled")
    heartbeat(app_portal, t.api_key, doc)
    heartbeat(app_portal, t.api_key, {**doc, "cameras": doc["cameras"][:2]})  # cam-002 gone
    keys: dict[str, str] = {}

    async def more(s: Any) -> None:
        for pod_id in ("pod-err", "pod-silent"):
            keys[pod_id] = (await admin.create_pod(s, t.site_id, pod_id, pod_id)).api_key

    asyncio.run(in_session(db_url, more))
    heartbeat(app_portal, keys["pod-silent"], cameras_doc("pod-silent", 2))
    age_pods(db_url, t.company_id, 3600)  # every pod silent for an hour, then two speak again
    heartbeat(app_portal, keys["pod-err"], {**cameras_doc("pod-err", 2), "status": "error"})
    heartbeat(app_portal, t.api_key, {**doc, "cameras": doc["cameras"][:2]})
    every = walk(app_portal, auth)
    badges = {(c["pod_id"], c["id"]): camera_badge(c).state for c in every}
    assert set(badges.values()) == {"live", "offline", "error"}, badges
    for state in ("live", "offline", "error"):
        got = {(c["pod_id"], c["id"]) for c in walk(app_portal, auth, state=state)}
        assert got == {k for k, v in badges.items() if v == state}, state
    assert len(walk(app_portal, auth, status="error")) == 1


def test_limits_refused(app_portal: AppPortal, world: World) -> None:
    for path in ("/api/cameras", "/api/pods"):
        for bad in ("0", "501", "-1", "ten", "1.5", ""):
            r = get(app_portal, path, world.a_auth, limit=bad)
            assert r.status_code == 422, (path, bad, r.text)
            assert r.json()["error"] == "validation_error"
            assert r.json()["detail"][0]["field"] == "limit"
        assert get(app_portal, path, world.a_auth, limit="500").status_code == 200
        r = get(app_portal, path, world.a_auth, q="x" * 101)
        assert r.status_code == 422


def _forgeries(good: str) -> list[str]:
    payload, mac = good.split(".")
    other = base64.urlsafe_b64encode(b'["zzz","zzz","zzz"]').rstrip(b"=").decode()
    return [
        "",
        "garbage",
        "a.b.c",
        f"{other}.{mac}",  # another key, the old MAC
        f"{payload}.{'A' * len(mac)}",
        f"{payload}.",
        f".{mac}",
        f"{payload}x.{mac}",
        "é.é",
        "%00.%ff",
        base64.urlsafe_b64encode(b"[1,2,3]").decode() + "." + mac,
        good + "A",
        "x" * 1201,
    ]


def test_forged_or_garbled_cursors_400(app_portal: AppPortal, world: World) -> None:
    for path, kind in (("/api/cameras", "cameras"), ("/api/pods", "pods")):
        good = get(app_portal, path, world.a_auth, limit=1).json()["next_cursor"]
        assert good
        for bad in _forgeries(good):
            r = get(app_portal, path, world.a_auth, limit=1, cursor=bad)
            assert r.status_code in (400, 422), (path, bad, r.status_code, r.text)
            assert r.headers["content-type"].startswith("application/json")
            assert r.json()["error"] in ("invalid_cursor", "validation_error")
            assert kind not in r.json()
        # a cursor continues only its own listing: other filters, other kind → refused
        r = get(app_portal, path, world.a_auth, limit=1, cursor=good, site="alpha-site")
        assert r.status_code == 400 and r.json()["error"] == "invalid_cursor"
    cams = get(app_portal, "/api/cameras", world.a_auth, limit=1).json()["next_cursor"]
    r = get(app_portal, "/api/pods", world.a_auth, limit=1, cursor=cams)
    assert r.status_code == 400


def test_cursor_of_another_company_reveals_nothing(app_portal: AppPortal, world: World) -> None:
    for path in ("/api/cameras", "/api/pods"):
        cursor = get(app_portal, path, world.a_auth, limit=1).json()["next_cursor"]
        r = get(app_portal, path, world.b_auth, limit=1, cursor=cursor)
        assert r.status_code == 400 and r.json()["error"] == "invalid_cursor"
        for word in ("alpha", "beta", "POD-A", "Gate camera", "Lobby"):
            assert word not in r.text
    # B's own listing: only B's pod (same wire pod_id as one of A's) and its 5 cameras
    cams = walk(app_portal, world.b_auth, limit=2)
    assert len(cams) == 5 and {c["site"] for c in cams} == {world.b.site_name}
    assert get(app_portal, "/api/cameras", world.b_auth, site="alpha-site").json()["total"] == 0
    r = get(app_portal, "/api/cameras", world.b_auth, site=world.sites["alpha-site"])
    assert r.json()["cameras"] == []


def test_pods_pages_and_filters(app_portal: AppPortal, world: World, db_url: str) -> None:
    auth = world.a_auth
    pods = walk(app_portal, auth, "/api/pods", limit=1)
    ids = [p["pod_id"] for p in pods]
    assert len(ids) == 4 and len(set(ids)) == 4
    keys = [(p["site"], p["pod_id"]) for p in pods]
    assert keys == sorted(keys)
    body = get(app_portal, "/api/pods", auth, limit=2).json()
    assert body["total"] == 4 and len(body["pods"]) == 2 and body["next_cursor"]
    assert [p["pod_id"] for p in walk(app_portal, auth, "/api/pods", community="south")] == [
        "pod-b1"
    ]
    assert [p["pod_id"] for p in walk(app_portal, auth, "/api/pods", q="a2")] == ["pod-a2"]
    online = {p["pod_id"] for p in walk(app_portal, auth, "/api/pods", status="online")}
    offline = {p["pod_id"] for p in walk(app_portal, auth, "/api/pods", status="offline")}
    assert online == {"pod-a1", "pod-a2", "pod-b1"} and offline == {"aa-unused"}
    r = get(app_portal, "/api/pods", auth, status="bogus")
    assert r.status_code == 422


def test_decommissioned_pods_cameras_are_neither_listed_nor_counted(
    app_portal: AppPortal, db_url: str
) -> None:
    from sqlalchemy import update

    from platebridge.portal.models import Pod, utcnow
    from platebridge.portal.services import admin

    t = seed_company(db_url)
    auth = app_portal.login(t.email, t.password)
    heartbeat(app_portal, t.api_key, cameras_doc(t.pod_id, 3))
    keys: list[str] = []

    async def second_pod(s: Any) -> None:
        keys.append((await admin.create_pod(s, t.site_id, "pod-live", "live")).api_key)

    asyncio.run(in_session(db_url, second_pod))
    heartbeat(app_portal, keys[0], cameras_doc("pod-live", 2))
    assert get(app_portal, "/api/cameras", auth, limit=1).json()["total"] == 5

    async def decommission(s: Any) -> None:
        mine = (Pod.company_id == uuid.UUID(t.company_id), Pod.pod_id == t.pod_id)
        await s.execute(update(Pod).where(*mine).values(decommissioned_at=utcnow()))

    asyncio.run(in_session(db_url, decommission))
    for params in ({"limit": 1}, {"limit": 1, "status": "active"}, {"q": "a", "limit": 1}):
        body = get(app_portal, "/api/cameras", auth, **params).json()
        assert body["total"] == 2, params
        assert {c["pod_id"] for c in walk(app_portal, auth, **params)} == {"pod-live"}
