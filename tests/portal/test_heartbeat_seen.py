"""The heartbeat's hot path: bodies validated before (``SeenBodies``) skip the parser, and the
POD's routes are served by ``ExactRoutes`` without the router — with the same answers, error
bodies and headers as before. SQLite and PostgreSQL, the app in-process."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from platebridge.portal.routes import heartbeat as route
from platebridge.portal.services.heartbeat_body import SeenBodies
from tests.support.inprocess import AppPortal
from tests.support.portal import SeededCompany, sql

HB = "/api/pod/heartbeat"


def body(t: SeededCompany, *cameras: str) -> dict[str, Any]:
    return {
        "pod_id": t.pod_id,
        "ip_address": "192.168.1.100",
        "firmware_version": "1.0.0",
        "cameras": [{"camera_id": c, "name": f"Camera {c}"} for c in cameras],
    }


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every body the route hands to its parser."""
    seen: list[bytes] = []
    parse = route._parse

    def counting(raw: bytes) -> Any:
        seen.append(raw)
        return parse(raw)

    monkeypatch.setattr(route, "_parse", counting)
    return seen


def of_pod(app: AppPortal, t: SeededCompany) -> dict[str, str]:
    """The tenant's pod as SQL parameters (SQLite keeps UUIDs without dashes)."""
    company = t.company_id.replace("-", "") if "sqlite" in app.db_url else t.company_id
    return {"p": t.pod_id, "c": company}


def pod_row(app: AppPortal, t: SeededCompany) -> tuple[Any, ...]:
    rows = sql(
        app.db_url,
        "SELECT pods.last_heartbeat, count(cameras.id) FROM pods LEFT JOIN cameras "
        "ON cameras.pod_id = pods.id WHERE pods.pod_id = :p AND pods.company_id = :c "
        "GROUP BY pods.last_heartbeat",
        **of_pod(app, t),
    )
    return rows[0]


def test_an_unchanged_body_is_not_parsed_again(
    app_portal: AppPortal, tenant: SeededCompany, parses: list[bytes]
) -> None:
    c = app_portal.client
    first = c.post(HB, headers=tenant.pod_auth, json=body(tenant, "cam-1", "cam-2"))
    assert first.status_code == 200, first.text
    assert len(parses) == 1
    beat_1, cameras = pod_row(app_portal, tenant)
    assert cameras == 2
    again = c.post(HB, headers=tenant.pod_auth, json=body(tenant, "cam-1", "cam-2"))
    assert again.status_code == 200, again.text
    answer = again.json()
    assert answer["pod_id"] == tenant.pod_id and answer["registered"] is False
    assert answer["ok"] is True and answer["heartbeat_interval"] == 60
    assert len(parses) == 1  # answered from the seen body: no second parse
    beat_2, _ = pod_row(app_portal, tenant)
    assert beat_2 > beat_1  # and the timestamp written
    changed = c.post(HB, headers=tenant.pod_auth, json=body(tenant, "cam-1"))
    assert changed.status_code == 200 and len(parses) == 2
    assert pod_row(app_portal, tenant)[1] == 2  # cam-2 kept (inactive), never deleted


def test_a_seen_body_with_a_revoked_key_is_refused(
    app_portal: AppPortal, tenant: SeededCompany
) -> None:
    c = app_portal.client
    assert c.post(HB, headers=tenant.pod_auth, json=body(tenant, "cam-1")).status_code == 200
    sql(
        app_portal.db_url,
        "UPDATE api_keys SET revoked_at = CURRENT_TIMESTAMP WHERE pod_id IN "
        "(SELECT id FROM pods WHERE pod_id = :p AND company_id = :c)",
        **of_pod(app_portal, tenant),
    )
    r = c.post(HB, headers=tenant.pod_auth, json=body(tenant, "cam-1"))
    assert r.status_code == 401, r.text
    assert r.json()["error"] == "invalid_api_key"
    assert r.headers["x-content-type-options"] == "nosniff"  # the app's headers on the lane


def test_a_seen_body_is_applied_in_full_when_the_stored_state_changed(
    app_portal: AppPortal, tenant: SeededCompany
) -> None:
    c = app_portal.client
    assert c.post(HB, headers=tenant.pod_auth, json=body(tenant, "cam-1")).status_code == 200
    pod = of_pod(app_portal, tenant)
    sql(app_portal.db_url, "DELETE FROM cameras WHERE pod_id IN "
        "(SELECT id FROM pods WHERE pod_id = :p AND company_id = :c)", **pod)  # fmt: skip
    sql(app_portal.db_url, "UPDATE pods SET heartbeat_digest = NULL "
        "WHERE pod_id = :p AND company_id = :c", **pod)  # fmt: skip
    r = c.post(HB, headers=tenant.pod_auth, json=body(tenant, "cam-1"))
    assert r.status_code == 200, r.text
    assert pod_row(app_portal, tenant)[1] == 1  # the slow path wrote the camera again


def test_the_pod_routes_bypass_the_router_with_the_same_errors(
    app_portal: AppPortal, tenant: SeededCompany, monkeypatch: pytest.MonkeyPatch
) -> None:
    routed: list[str] = []
    router = app_portal.app.router
    inner = router.middleware_stack

    async def recording(scope: Any, receive: Any, send: Any) -> None:
        routed.append(scope.get("path", ""))
        await inner(scope, receive, send)

    monkeypatch.setattr(router, "middleware_stack", recording)
    c = app_portal.client
    assert c.post(HB, headers=tenant.pod_auth, json=body(tenant, "cam-1")).status_code == 200
    bad = c.post(HB, headers=tenant.pod_auth, content=b"{not json")
    assert bad.status_code == 422, bad.text
    assert bad.json()["error"] == "validation_error"  # worded by the tolerant parser
    assert bad.headers["content-security-policy"].startswith("default-src 'self'")
    huge = c.post(HB, headers=tenant.pod_auth, content=b"x" * (70 * 1024))
    assert huge.status_code == 413 and huge.json()["error"] == "payload_too_large"
    assert c.get(HB).status_code == 405  # another method: the router, which tells so
    assert c.get("/health").status_code == 200
    assert routed == [HB, "/health"]


def test_seen_bodies_are_bounded_oldest_first() -> None:
    seen = SeenBodies(size=3)
    keys = [SeenBodies.key(f"body {i}".encode()) for i in range(5)]
    for i, key in enumerate(keys):
        seen.add(key, f"pod-{i}", bytes([i]) * 32)
    assert len(seen) == 3
    assert seen.get(keys[0]) is None and seen.get(keys[1]) is None
    assert seen.get(keys[4]) == ("pod-4", bytes([4]) * 32)
    seen.add(keys[2], "pod-2", b"\2" * 32)  # known: replaced in place, nothing evicted
    assert len(seen) == 3 and seen.get(keys[3]) is not None


@pytest.fixture(autouse=True)
def _fresh_seen(app_portal: AppPortal) -> Iterator[None]:
    app_portal.app.state.seen_heartbeats = SeenBodies()
    yield
