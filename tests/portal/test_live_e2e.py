"""End to end: the live fMP4 view through the portal (docs/live.md) with a real GStreamer RTSP
camera, the real POD agent (one ffmpeg: HLS + live fMP4) and the real portal process; the
``websockets`` library as the viewer. Through the proxy and through the tunnel: the init
text, the init segment and fragments starting at a keyframe; three viewers of one camera are
ONE live request at the POD, closed again after the last viewer left; refusals before the
upgrade. SQLite only (the database is not what is tested here)."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from platebridge.core.fmp4 import split
from tests.portal.streaming_support import add_viewer
from tests.support.agent import Agent
from tests.support.camera import TestCamera, camera_available
from tests.support.metrics import value
from tests.support.portal import (
    PortalProc,
    SeededCompany,
    cli,
    login,
    new_sqlite_url,
    portal_process,
    seed_company,
)
from tests.support.procs import wait_until
from tests.support.secrets import assert_no_secrets
from tests.tunnel.support import TUNNEL_ENV, agent_config, portal_stats

pytestmark = pytest.mark.e2e
CAMERA = "gate-camera-1"
METRICS_TOKEN = "live-e2e-metrics-token-0123456789"


@dataclass
class World:
    url: str
    db_url: str
    tenant: SeededCompany
    auth: dict[str, str]
    agent: Agent
    listen_port: int
    camera: TestCamera
    portal: PortalProc

    def ws_url(self, pod_id: str | None = None, token: str | None = None) -> str:
        query = f"camera_id={CAMERA}" + (f"&token={token}" if token else "")
        base = self.url.replace("http://", "ws://")
        return f"{base}/api/pod/live/{pod_id or self.tenant.pod_id}?{query}"

    def set_mode(self, mode: str) -> None:
        cli(self.db_url, "pod", "set-mode", "--pod-id", self.tenant.pod_id, "--mode", mode)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    if not camera_available():
        pytest.fail("needs /usr/bin/python3 with GStreamer RTSP server and ffmpeg")
    tmp = tmp_path_factory.mktemp("live")
    db_url = new_sqlite_url(tmp)
    env = TUNNEL_ENV | {
        "PLATEBRIDGE_POD_NETWORKS": "127.0.0.0/8",
        "PLATEBRIDGE_METRICS_TOKEN": METRICS_TOKEN,
    }
    # --log-level info: uvicorn logs each WebSocket (with its query), for the leak check
    with (
        portal_process(db_url, env, log_dir=tmp, log_level="info") as portal,
        TestCamera(tmp) as camera,
    ):
        url = portal.url
        tenant = seed_company(db_url)
        # The tunnel always up (POD config), so the portal's mode alone picks proxy or tunnel.
        config = agent_config(tmp, tenant, camera.url, portal_url=url)
        agent = Agent(tmp, config)
        try:
            agent.wait_status("active", timeout=40)
            auth = login(url, tenant.email, tenant.password)
            port = int(config["listen_port"])
            world = World(url, db_url, tenant, auth, agent, port, camera, portal)
            world.set_mode("proxy")

            def streamable() -> bool:
                r = httpx.get(f"{url}/api/cameras", headers=auth, timeout=10)
                return any(c["id"] == CAMERA and c["streamable"] for c in r.json()["cameras"])

            wait_until(streamable, timeout=30, what="camera registered by heartbeat")
            yield world
        finally:
            agent.close()


def open_ws(url: str, auth: dict[str, str] | None = None) -> ClientConnection:
    return connect(url, additional_headers=auth or {}, open_timeout=20, max_size=None)


def start_of_stream(ws: ClientConnection) -> tuple[dict[str, Any], bytes, list[bytes]]:
    """The init text, the init segment and the next five fragments."""
    text = ws.recv(timeout=20)
    assert isinstance(text, str), text
    init = ws.recv(timeout=20)
    fragments = [ws.recv(timeout=20) for _ in range(5)]
    assert isinstance(init, bytes) and all(isinstance(f, bytes) for f in fragments)
    return json.loads(text), init, fragments  # type: ignore[return-value]


def pod_live_connections(port: int) -> int:
    """Established TCP connections accepted on the POD's port (only the live relay talks to
    the POD's HTTP server in this module: heartbeats go from the POD to the portal)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError), open(table) as f:
            for line in f.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                if state == "01" and int(local.rsplit(":", 1)[1], 16) == port:
                    count += 1
    return count


def world_user_id(world: World, auth: dict[str, str]) -> str:
    me = httpx.get(f"{world.url}/api/auth/me", headers=auth, timeout=10).json()
    return str(me.get("user_id") or me.get("id"))


def tunnel_streams(world: World) -> int:
    health = httpx.get(f"http://127.0.0.1:{world.listen_port}/health", timeout=5).json()
    return int(health["tunnel"]["streams"])


def live_viewers(world: World, method: str) -> float:
    """The portal's ``/metrics`` gauge of live viewers by ``method``."""
    r = httpx.get(
        f"{world.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10
    )
    r.raise_for_status()
    return value(r.text, "platebridge_portal_active_viewers", method=method, transport="live")


def check_three_viewers(
    world: World, open_upstreams: Any, auth: dict[str, str], method: str
) -> None:
    """``open_upstreams()`` counts what the POD has open; idle keep-alive connections of
    earlier requests close within seconds, so it starts from none. The portal's metrics count
    the three viewers by ``method`` while they watch."""
    wait_until(lambda: open_upstreams() == 0, timeout=15, what="nothing open at the POD")
    before = live_viewers(world, method)
    with contextlib.ExitStack() as stack:
        viewers = [stack.enter_context(open_ws(world.ws_url(), auth)) for _ in range(3)]
        for ws in viewers:
            hello, init, fragments = start_of_stream(ws)
            assert hello["type"] == "init" and hello["camera_id"] == CAMERA
            assert hello["codecs"].startswith("avc1.")
            assert hello["mime"] == f'video/mp4; codecs="{hello["codecs"]}"'
            parsed = split(init + b"".join(fragments))
            assert parsed.init is not None and parsed.init.data == init
            # at least 5: queued fragments (the keyframe cache) come joined in larger messages
            assert len(parsed.fragments) >= 5
            assert parsed.fragments[0].keyframe  # the keyframe cache: a picture at once
        assert open_upstreams() == 1  # ONE live request at the POD for three viewers
        assert live_viewers(world, method) == before + 3
    wait_until(lambda: open_upstreams() == 0, timeout=30, what="the live upstream closed")
    wait_until(lambda: live_viewers(world, method) == before, timeout=15, what="viewers gone")


def test_through_the_proxy(world: World) -> None:
    world.set_mode("proxy")
    check_three_viewers(world, lambda: pod_live_connections(world.listen_port), world.auth, "proxy")


def test_through_the_tunnel(world: World, tmp_path: Path) -> None:
    world.set_mode("tunnel")
    try:
        wait_until(lambda: tunnel_streams(world) == 0, timeout=10, what="an idle tunnel")
        # Another user: a new viewing in the audit trail (one user's viewing is one row).
        viewer = login(world.url, *add_viewer(world.db_url, world.tenant))
        check_three_viewers(world, lambda: tunnel_streams(world), viewer, "tunnel")
        assert portal_stats(world.url)["streams"] == 0  # nothing left open at the portal
        r = httpx.get(
            f"{world.url}/api/audit",
            headers=world.auth,
            params={"action": "stream_started"},
            timeout=10,
        )
        methods = {
            (e["user_id"] == world_user_id(world, viewer), e["method"]) for e in r.json()["events"]
        }
        assert (True, "tunnel") in methods
    finally:
        world.set_mode("proxy")


def test_a_camera_drop_out_is_bridged_on_the_open_socket(world: World) -> None:
    """The camera drops everyone for a moment: the POD restarts its ffmpeg and ends the live
    body; the portal reopens it and the open socket gets ``restarted``, then a new init
    segment and a keyframe."""
    world.set_mode("proxy")
    with open_ws(world.ws_url(), world.auth) as ws:
        start_of_stream(ws)
        world.camera.toggle_dropout()
        try:
            time.sleep(1.5)  # a short drop-out (the camera refuses everyone meanwhile)
        finally:
            world.camera.toggle_dropout()
        message = ws.recv(timeout=30)
        while not isinstance(message, str):
            message = ws.recv(timeout=30)
        assert json.loads(message)["type"] == "notice", message
        assert json.loads(message)["reason"] == "restarted"
        init = ws.recv(timeout=30)
        first = ws.recv(timeout=30)
        assert isinstance(init, bytes) and isinstance(first, bytes)
        assert split(init + first).fragments[0].keyframe


def test_refusals_before_the_upgrade(world: World) -> None:
    with pytest.raises(InvalidStatus) as caught:
        open_ws(world.ws_url()).close()
    assert caught.value.response.status_code == 401
    other = seed_company(world.db_url, pod_id="other-gate-pod")
    for pod_id in ("other-gate-pod", "no-such-pod"):
        with pytest.raises(InvalidStatus) as caught:
            open_ws(world.ws_url(pod_id), world.auth).close()
        response = caught.value.response
        assert response.status_code == 404
        assert json.loads(response.body or b"{}")["error"] == "not_found"
    assert other.pod_id == "other-gate-pod"


def test_a_stream_token_in_the_url_is_never_logged(world: World) -> None:
    r = httpx.post(
        f"{world.url}/api/pod/stream-token",
        headers=world.auth,
        json={"pod_id": world.tenant.pod_id, "camera_id": CAMERA},
        timeout=10,
    )
    token = r.json()["token"]
    with open_ws(world.url.replace("http://", "ws://") + r.json()["live_url"]) as ws:
        assert start_of_stream(ws)[0]["type"] == "init"
    assert_no_secrets(
        {"portal": world.portal.output(), "agent": world.agent.output()},
        {"stream token": token, "session": world.auth["Authorization"].split()[1]},
    )
