"""Roles: a viewer cannot create pods, rotate keys, change stream modes or read the audit log
(403), on the API and on the pages — and nothing changes when they try."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.security.conftest import World
from tests.security.routes_table import RouteInfo
from tests.security.test_isolation import ROUTES, _values, send
from tests.security.world import heartbeat_body
from tests.support.portal import cli_json

pytestmark = pytest.mark.e2e  # a real portal process (tests/conftest.py guards it)

#: Route labels that must be admin-only whenever they exist.
ADMIN_ACTIONS = re.compile(
    r"rotate|audit|/mode|enrollment|^POST /pods/new|^PATCH /api/pods|keys?\b|/users\b"
)


def admin_routes() -> list[RouteInfo]:
    return [r for r in ROUTES if r.admin_only]


def test_admin_actions_are_declared_admin_only() -> None:
    sensitive = [r.label for r in ROUTES if ADMIN_ACTIONS.search(r.label)]
    assert sensitive, "no admin actions found in the route table"
    missing = [label for label in sensitive if not any(r.label == label for r in admin_routes())]
    assert not missing, f"routes that must require the admin role: {missing}"
    assert {"PATCH /api/pods/{pod_id}", "GET /api/audit"} <= {r.label for r in admin_routes()}


def test_viewer_gets_403_and_changes_nothing(world: World) -> None:
    a, b = world.a, world.b
    # A known state first (other tests act on A's pod as admin).
    pod_url = f"{world.url}/api/pods/{a.pod_id}"
    assert httpx.patch(pod_url, headers=a.admin_auth, json={"stream_mode": "proxy"}).is_success
    key = cli_json(
        world.db_url, "pod", "rotate-key", "--pod-id", a.pod_id, "--company", a.company_id
    )["api_key"]
    a.api_key = key
    for route in admin_routes():
        values = _values(route, a, b, set())
        r = send(world.url, route, values, a.viewer_auth)
        assert r.status_code == 403, (route.label, r.status_code, r.text[:200])
        if route.api:
            assert r.json()["error"] == "forbidden"
        assert key not in r.text and a.stream_secret not in r.text
    r = httpx.get(pod_url, headers=a.viewer_auth)
    assert r.status_code == 200 and r.json()["stream_mode"] == "proxy"
    r = httpx.post(
        f"{world.url}/api/pod/heartbeat",
        headers={"Authorization": f"Bearer {key}"},
        json=heartbeat_body(a, a.pod_id, a.ip),
    )
    assert r.status_code == 200, "a viewer's rotate-key attempt revoked the pod key"


def test_admin_can_change_stream_mode_viewer_sees_it(world: World) -> None:
    a = world.a
    url = f"{world.url}/api/pods/{a.shared_pod_id}"
    r = httpx.patch(url, headers=a.admin_auth, json={"stream_mode": "direct"})
    assert r.status_code == 200, r.text
    assert httpx.get(url, headers=a.viewer_auth).json()["stream_mode"] == "direct"
    r = httpx.patch(url, headers=a.viewer_auth, json={"stream_mode": "proxy"})
    assert r.status_code == 403
    assert httpx.get(url, headers=a.viewer_auth).json()["stream_mode"] == "direct"
    assert httpx.patch(url, headers=a.admin_auth, json={"stream_mode": "proxy"}).status_code == 200
