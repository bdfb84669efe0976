"""Recorded footage (issue 13) in the isolation matrix's world: a live-only role (viewer) and a
live token get nothing of the footage of their own company, a footage token nothing of another
camera or company, and the share-link routes the same. (Another company's user gets 404 on
every footage route: ``test_isolation`` walks them like every other route.)"""

from __future__ import annotations

import time

import httpx
import pytest

from tests.security.conftest import World
from tests.security.test_isolation import ROUTES, _values, send

pytestmark = pytest.mark.e2e  # a real portal process (tests/conftest.py guards it)

FOOTAGE_ROUTES = [r for r in ROUTES if r.path.startswith(("/api/footage", "/api/shares"))]
RELAYS = [r for r in FOOTAGE_ROUTES if r.path.startswith("/api/footage/")]


def test_the_footage_routes_are_in_the_route_table() -> None:
    labels = {r.label for r in FOOTAGE_ROUTES}
    assert {
        "POST /api/footage-token",
        "GET /api/footage/{pod_id}",
        "GET /api/footage/{pod_id}/media",
        "GET /api/footage/{pod_id}/export",
        "POST /api/shares",
        "GET /api/shares",
        "DELETE /api/shares/{share_id}",
    } <= labels


def test_a_live_only_role_gets_403_on_every_footage_route(world: World) -> None:
    a, b = world.a, world.b
    for route in FOOTAGE_ROUTES:
        r = send(world.url, route, _values(route, a, b, set()), a.viewer_auth)
        assert r.status_code == 403, (route.label, r.status_code, r.text[:200])
        assert r.json()["error"] == "forbidden", route.label
    # the viewer may still watch live
    r = httpx.post(
        f"{world.url}/api/pod/stream-token",
        headers=a.viewer_auth,
        json={"pod_id": a.pod_id, "camera_id": a.camera_id},
        timeout=10,
    )
    assert r.status_code == 200, r.text


def _token(world: World, path: str, body: dict[str, object]) -> str:
    r = httpx.post(f"{world.url}{path}", headers=world.a.admin_auth, json=body, timeout=10)
    assert r.status_code == 200, r.text
    token: str = r.json()["token"]
    return token


def test_a_live_token_gets_nothing_of_the_footage(world: World) -> None:
    a, b = world.a, world.b
    live = _token(world, "/api/pod/stream-token", {"pod_id": a.pod_id, "camera_id": a.camera_id})
    for route in RELAYS:
        values = {**_values(route, a, b, set()), "token": live}
        r = send(world.url, route, values, {})  # no session: the token alone
        assert r.status_code == 403 and r.json()["error"] == "wrong_scope", route.label
        assert live not in r.text


def test_a_footage_token_gets_nothing_of_another_camera_or_company(world: World) -> None:
    a, b = world.a, world.b
    now = time.time()
    body = {"pod_id": a.pod_id, "camera_id": a.camera_id, "from": now - 600, "to": now}
    footage = _token(world, "/api/footage-token", body)
    for route in RELAYS:
        values = {**_values(route, a, b, set()), "token": footage, "from": now - 600}
        values |= {"to": now - 300, "start": now - 500}
        own = send(world.url, route, values, {})
        assert own.status_code == 502, (route.label, own.text[:200])  # authorised: no POD here
        for foreign in ({"pod_id": b.pod_id}, {"camera_id": b.camera_id}):
            r = send(world.url, route, {**values, **foreign}, {})
            assert r.status_code in (401, 404), (route.label, foreign, r.status_code)
            assert not any(f in r.text for f in b.fingerprints() if f)
    # ... and never live
    r = httpx.get(
        f"{world.url}/api/pod/snapshot/{a.pod_id}",
        params={"camera_id": a.camera_id, "token": footage},
        timeout=10,
    )
    assert r.status_code == 403 and r.json()["error"] == "wrong_scope"


def test_another_companys_share_cannot_be_listed_or_revoked(world: World) -> None:
    a, b = world.a, world.b
    assert b.share_ids, "the world has a share link of company B"
    listed = httpx.get(f"{world.url}/api/shares", headers=a.admin_auth, timeout=10).json()
    assert b.share_ids[0] not in str(listed)
    r = httpx.delete(f"{world.url}/api/shares/{b.share_ids[0]}", headers=a.admin_auth)
    assert r.status_code == 404
    mine = httpx.get(f"{world.url}/api/shares", headers=b.admin_auth, timeout=10).json()
    assert next(s for s in mine["shares"] if s["id"] == b.share_ids[0])["state"] == "active"
