"""``GET /metrics`` of the portal: protection, the exposition parses, values move as we act.

Fast lane: the app in-process (tests/support/inprocess.py) on SQLite and PostgreSQL; requests
come from 127.0.0.1. Counters are per Python process (shared by every app a test session
builds), so the tests compare before and after.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError
from sqlalchemy import update
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket

from platebridge.portal.db import Database
from platebridge.portal.metrics.collect import Fleet, render
from platebridge.portal.metrics.middleware import MetricsMiddleware, note_stream_method
from platebridge.portal.metrics.viewers import HlsViewers
from platebridge.portal.models import Pod, utcnow
from platebridge.portal.settings import PortalSettings, normalize_database_url
from tests.portal.test_heartbeat import camera_payload
from tests.support import inprocess
from tests.support.inprocess import AppPortal
from tests.support.metrics import value
from tests.support.portal import SeededCompany, age_pods

TOKEN = "metrics-token-for-the-tests-0123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def metrics_portal(db_url: str) -> Iterator[AppPortal]:
    env = {"PLATEBRIDGE_METRICS_TOKEN": TOKEN, "PLATEBRIDGE_METRICS_NETWORKS": "127.0.0.0/8"}
    with inprocess.app_portal(db_url, env) as app:
        yield app


async def _decommission(db_url: str, company_id: str) -> None:
    db = Database(normalize_database_url(db_url))
    try:
        async with db.write() as s:
            await s.execute(
                update(Pod)
                .where(Pod.company_id == uuid.UUID(company_id))
                .values(decommissioned_at=utcnow())
            )
    finally:
        await db.dispose()


def scrape(portal: AppPortal) -> str:
    r = portal.client.get("/metrics", headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return r.text


def test_off_without_settings_is_404(app_portal: AppPortal) -> None:
    for headers in ({}, AUTH):
        r = app_portal.client.get("/metrics", headers=headers)
        assert r.status_code == 404
        assert r.json()["error"] == "not_found"


def test_token_is_required_and_checked(metrics_portal: AppPortal) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong-token-wrong-token"}, {"X-Token": TOKEN}):
        r = metrics_portal.client.get("/metrics", headers=headers)
        assert r.status_code == 401, r.text
        assert r.json()["error"] == "unauthorized"
        assert r.headers["www-authenticate"] == "Bearer"
        assert TOKEN not in r.text
    text = scrape(metrics_portal)
    assert {f.name for f in text_string_to_metric_families(text)} >= {
        "platebridge_portal_heartbeats",
        "platebridge_portal_request_duration_seconds",
        "platebridge_portal_pods",
        "platebridge_portal_cameras",
        "platebridge_portal_alert_deliveries",
        "platebridge_portal_active_viewers",
        "platebridge_portal_tunnel_connections",
        "platebridge_portal_db_pool_connections_in_use",
    }


def test_network_allow_list(db_url: str) -> None:
    env = {"PLATEBRIDGE_METRICS_TOKEN": TOKEN, "PLATEBRIDGE_METRICS_NETWORKS": "10.0.0.0/8"}
    with inprocess.app_portal(db_url, env) as portal:
        r = portal.client.get("/metrics", headers=AUTH)
        assert r.status_code == 403 and r.json()["error"] == "forbidden"
    with inprocess.app_portal(db_url, {"PLATEBRIDGE_METRICS_NETWORKS": "127.0.0.1/32"}) as portal:
        assert portal.client.get("/metrics").status_code == 200  # networks alone suffice


def test_not_in_the_openapi_document(metrics_portal: AppPortal) -> None:
    assert "/metrics" not in metrics_portal.app.openapi()["paths"]


def test_a_heartbeat_moves_its_counter_and_the_fleet(
    metrics_portal: AppPortal, tenant: SeededCompany
) -> None:
    before = scrape(metrics_portal)
    r = metrics_portal.client.post(
        "/api/pod/heartbeat", headers=tenant.pod_auth, json=camera_payload("cam-a", "cam-b")
    )
    assert r.status_code == 200, r.text
    bad = {"Authorization": "Bearer pbk_" + "x" * 43}
    r = metrics_portal.client.post("/api/pod/heartbeat", headers=bad, json=camera_payload("c"))
    assert r.status_code == 401
    after = scrape(metrics_portal)
    hb = "platebridge_portal_heartbeats_total"
    assert value(after, hb, outcome="ok") == value(before, hb, outcome="ok") + 1
    assert value(after, hb, outcome="unauthorized") == value(before, hb, outcome="unauthorized") + 1
    pods, cams = "platebridge_portal_pods", "platebridge_portal_cameras"
    assert value(after, pods, status="online") == value(before, pods, status="online") + 1
    assert value(after, cams, status="active") == value(before, cams, status="active") + 2
    # latency by route template, never by raw path
    count = "platebridge_portal_request_duration_seconds_count"
    assert value(after, count, method="POST", route="/api/pod/heartbeat") >= 2
    metrics_portal.client.get("/api/pods/some-pod-id-xyz", headers=AUTH)
    text = scrape(metrics_portal)
    assert value(text, count, method="GET", route="/api/pods/{pod_id}") >= 1
    assert "some-pod-id-xyz" not in text and tenant.api_key not in text


def test_silent_and_decommissioned_pods(metrics_portal: AppPortal, tenant: SeededCompany) -> None:
    r = metrics_portal.client.post(
        "/api/pod/heartbeat", headers=tenant.pod_auth, json=camera_payload("cam-a")
    )
    assert r.status_code == 200, r.text
    pods, cams = "platebridge_portal_pods", "platebridge_portal_cameras"
    before = scrape(metrics_portal)
    age_pods(metrics_portal.db_url, tenant.company_id, 3600)  # silent for an hour: offline
    aged = scrape(metrics_portal)
    assert value(aged, pods, status="online") == value(before, pods, status="online") - 1
    assert value(aged, pods, status="offline") == value(before, pods, status="offline") + 1
    asyncio.run(_decommission(metrics_portal.db_url, tenant.company_id))
    gone = scrape(metrics_portal)
    assert value(gone, pods, status="offline") == value(aged, pods, status="offline") - 1
    assert value(gone, cams, status="active") == value(aged, cams, status="active") - 1


def test_a_live_viewer_shows_while_it_watches() -> None:
    """The middleware counts a WebSocket viewer once the streaming path names its method."""

    async def live(websocket: WebSocket) -> None:
        await websocket.accept()
        note_stream_method("tunnel")
        await websocket.send_bytes(b"x" * 100)
        await websocket.receive_text()
        await websocket.close()

    app = Starlette(routes=[WebSocketRoute("/api/pod/live/{pod_id}", live)])
    app.add_middleware(MetricsMiddleware)
    viewers = "platebridge_portal_active_viewers"
    sent = "platebridge_portal_stream_bytes_total"
    labels = {"method": "tunnel", "transport": "live"}
    before = render(Fleet()).decode()
    with TestClient(app) as client, client.websocket_connect("/api/pod/live/p") as ws:
        assert ws.receive_bytes() == b"x" * 100
        during = render(Fleet()).decode()
        ws.send_text("bye")
    after = render(Fleet()).decode()
    assert value(during, viewers, **labels) == value(before, viewers, **labels) + 1
    assert value(after, viewers, **labels) == value(before, viewers, **labels)
    assert value(after, sent, **labels) == value(before, sent, **labels) + 100


def test_hls_players_count_within_the_window() -> None:
    players = HlsViewers(window=60)
    players.seen(("a",), "proxy", now=0)
    players.seen(("a",), "proxy", now=10)  # the same player again
    players.seen(("b",), "tunnel", now=20)
    assert players._counts == {"proxy": 1, "tunnel": 1}
    players.refresh(now=75)  # a's last fetch was 65 s ago
    assert players._counts == {"proxy": 0, "tunnel": 1}


def test_settings_are_checked() -> None:
    with pytest.raises(ValidationError):
        PortalSettings(database_url="sqlite:///x.db", metrics_networks="not-a-network")
    with pytest.raises(ValidationError):
        PortalSettings(database_url="sqlite:///x.db", metrics_token="short")
    s = PortalSettings(database_url="sqlite:///x.db", metrics_token=TOKEN)
    assert TOKEN not in repr(s) and TOKEN not in str(s.model_dump())
