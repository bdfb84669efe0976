"""Issue 11's acceptance test: a pod set to ``tunnel`` or ``auto`` on the portal, whose POD config
says nothing about a tunnel and which the portal cannot reach, plays in Chromium.

Real portal (SQLite and PostgreSQL), RTSP test camera, POD agent and headless Chromium. The POD
reports 127.0.0.1, which the portal's default pod networks (the SSRF allow-list) refuse, so the
proxy cannot reach it (checked first, 409). Setting the mode on the portal is the only change: the
heartbeat answer makes the POD dial out, and the live page plays through the tunnel (the audit
trail's ``stream_started`` says ``tunnel``). Each test then sets the pod back to ``proxy`` and
waits for the tunnel to close, so the next one starts from a closed tunnel again.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page

from tests.conftest import require_postgres
from tests.support import portal as support
from tests.support.agent import Agent
from tests.support.camera import TestCamera, camera_available
from tests.support.portal import SeededCompany, cli, login, new_sqlite_url
from tests.support.procs import wait_until
from tests.tunnel.support import SECRET_KEY, pod_row, portal_stats, wait_tunnel
from tests.web.conftest import (
    CHROMIUM,
    TOKEN_TTL,
    assert_plays,
    off_loop,
    sign_in,
)
from tests.web.worlds import CAMERA_PATH, CameraWorld, camera_world, state

pytestmark = pytest.mark.e2e

# Runs before the page's own scripts: when (ms after navigation start) the video had its first
# decoded frame (loadeddata) and when it first advanced (timeupdate with currentTime > 0).
FIRST_FRAME_JS = """
window.__pbFrame = null; window.__pbPlaying = null;
document.addEventListener('loadeddata', () => {
  if (window.__pbFrame === null) window.__pbFrame = performance.now();
}, true);
document.addEventListener('timeupdate', (e) => {
  if (window.__pbPlaying === null && e.target.currentTime > 0) {
    window.__pbPlaying = performance.now();
  }
}, true);
"""


@dataclass
class ZeroConfigWorld:
    url: str
    db_url: str
    tenant: SeededCompany
    admin: dict[str, str]
    agent: Agent
    camera_world: CameraWorld


def _set_mode(world: ZeroConfigWorld, mode: str) -> None:
    cli(world.db_url, "pod", "set-mode", "--pod-id", world.tenant.pod_id, "--mode", mode)


def _tunnel_connected(world: ZeroConfigWorld) -> bool:
    return bool(pod_row(world.url, world.admin, world.tenant.pod_id)["tunnel_connected"])


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "sqlite":
        yield new_sqlite_url(tmp_path_factory.mktemp("sqlite"))
        return
    off_loop(require_postgres)  # its probe uses asyncio.run: Playwright's loop may be running
    url = off_loop(support.create_pg_database)
    try:
        yield url
    finally:
        off_loop(support.drop_pg_database, url)


@pytest.fixture(scope="module")
def zero_config_world(
    database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ZeroConfigWorld]:
    if not camera_available() or not Path(CHROMIUM).exists():
        pytest.skip("needs GStreamer's RTSP server, ffmpeg and /usr/bin/chromium")
    tmp = tmp_path_factory.mktemp("tunnel-web")
    env = {
        # PLATEBRIDGE_POD_NETWORKS stays at its default: loopback is outside it.
        "PLATEBRIDGE_SECRET_KEY": SECRET_KEY,
        "PLATEBRIDGE_REDIS_URL": "",
        "PLATEBRIDGE_STREAM_TOKEN_TTL": str(TOKEN_TTL),
        "PLATEBRIDGE_UPSTREAM_TOKEN_TTL": "6",
        "PLATEBRIDGE_STREAM_CONNECT_TIMEOUT": "1",
    }
    camera = TestCamera(tmp, pattern="ball")
    companies = (("Tunnel Company", "main-gate-pod"),)  # seeded in mode proxy
    with camera_world(tmp, camera, env, companies=companies, db_url=database) as cw:
        # The POD's config says nothing about a tunnel.
        assert not any(key.startswith("tunnel") for key in cw.agent_config)
        admin = login(cw.url, cw.tenant.email, cw.tenant.password)
        world = ZeroConfigWorld(cw.url, cw.db_url, cw.tenant, admin, cw.agent, cw)
        # The portal cannot reach the POD: the proxy refuses its address, no tunnel is open.
        r = httpx.get(
            f"{cw.url}/api/pod/proxy-stream/{cw.tenant.pod_id}",
            params={"camera_id": "gate-camera-1"},
            headers=admin,
            timeout=20,
        )
        assert r.status_code == 409, r.text
        assert not _tunnel_connected(world)
        assert cw.agent.health()["tunnel"]["state"] == "off"
        yield world


def _audit(world: ZeroConfigWorld, email: str, since: str) -> list[dict[str, Any]]:
    r = httpx.get(
        f"{world.url}/api/audit",
        headers=world.admin,
        params={"pod_id": world.tenant.pod_id, "user": email, "since": since},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    events: list[dict[str, Any]] = r.json()["events"]
    return events


@pytest.mark.parametrize("mode", ["tunnel", "auto"])
def test_zero_config_pod_plays_through_the_tunnel(
    zero_config_world: ZeroConfigWorld, page: Page, mode: str
) -> None:
    world = zero_config_world
    email, password = world.camera_world.viewer()
    since = datetime.now(UTC).isoformat()
    _set_mode(world, mode)
    opened = time.monotonic()
    try:
        wait_tunnel(world.url, world.admin, world.tenant.pod_id, timeout=40)
        tunnel_up = time.monotonic() - opened
        assert world.agent.health()["tunnel"]["state"] == "connected"
        assert portal_stats(world.url)["tunnels"] == 1

        sign_in(page, world.url, email, password)
        sockets: list[str] = []
        page.on("websocket", lambda ws: sockets.append(ws.url))
        page.add_init_script(FIRST_FRAME_JS)
        page.goto(world.url + CAMERA_PATH)
        played = assert_plays(page, seconds=3.0)
        assert played["state"] == "playing", played
        # The live view (MSE over the portal's live socket), not the HLS fallback.
        assert state(page)["player"] == "mse", state(page)
        own = world.url.replace("http://", "ws://")
        live = f"{own}/api/pod/live/{world.tenant.pod_id}?camera_id=gate-camera-1&token="
        assert len(sockets) == 1 and sockets[0].startswith(live), sockets
        frame_ms, playing_ms = page.evaluate("[window.__pbFrame, window.__pbPlaying]")
        assert frame_ms is not None and playing_ms is not None
        print(
            f"\n[{mode}, {world.db_url.split(':', 1)[0]}] tunnel up {tunnel_up:.1f} s after "
            f"set-mode; page → first frame {frame_ms / 1000:.2f} s, "
            f"→ playing {playing_ms / 1000:.2f} s"
        )

        # The viewing went through the tunnel: the portal's audit trail says so (the live
        # socket's stream_started carries the method its upstream used).
        events = _audit(world, email, since)
        started = [e["method"] for e in events if e["action"] == "stream_started"]
        issued = [e["method"] for e in events if e["action"] == "token_issued"]
        assert started and set(started) == {"tunnel"}, events
        assert issued and set(issued) == {"tunnel"}, events
        assert world.agent.health()["tunnel"]["connects"] >= 1
    finally:
        # Back to proxy: the POD closes its tunnel again (the next test opens it from scratch).
        _set_mode(world, "proxy")
        wait_until(lambda: not _tunnel_connected(world), timeout=30, what="tunnel closed")
        wait_until(
            lambda: world.agent.health()["tunnel"]["state"] == "off",
            timeout=15,
            what="POD tunnel off",
        )
