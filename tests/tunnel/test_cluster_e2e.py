"""Several portal processes: the tunnel is held by one, viewers may ask any.

Two ``platebridge-portal serve`` processes share one PostgreSQL database and one Redis. The
POD's ``portal_url`` points at a TCP load balancer in front of both (as in production); the
balancer sends its connections to the first process that accepts, so the tunnel lands on A.
The viewer asks B, which finds A in the Redis registry and forwards over A's internal endpoint.
Killing A (SIGKILL) drops the tunnel; the POD reconnects through the balancer to B, which now
holds the tunnel itself, and the viewer's player recovers.

Also: a tunnel drop mid-segment (the balancer cuts every connection while a slowed segment is
in flight, then refuses connections for 2 s): the player recovers within seconds once the POD
is back, and neither process keeps tunnel streams or extra tasks afterwards.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import require_postgres
from tests.support.agent import Agent
from tests.support.camera import TestCamera, camera_available
from tests.support.portal import (
    PortalProc,
    create_pg_database,
    drop_pg_database,
    login,
    migrate,
    run_portal,
    seed_company,
    start_portal,
)
from tests.support.procs import free_port, wait_until
from tests.tunnel.support import (
    SECRET_KEY,
    Balancer,
    Player,
    agent_config,
    ffmpeg_decode,
    pod_row,
    portal_stats,
    proxy_url,
    set_mode,
    stream_token,
    wait_tunnel,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not camera_available(), reason="needs ffmpeg and the GStreamer camera"),
]
REDIS_URL = "redis://127.0.0.1:6379/0"


def _require_redis() -> None:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=2).close()
    except OSError as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"Redis on 127.0.0.1:6379 is unreachable ({exc})", pytrace=False)
        pytest.skip(f"!!! Redis on 127.0.0.1:6379 is unreachable ({exc})")


@pytest.fixture
def pg_url() -> Iterator[str]:
    require_postgres()
    url = create_pg_database("pb_tunnel")
    try:
        migrate(url)
        yield url
    finally:
        drop_pg_database(url)


def _env(node_url: str) -> dict[str, str]:
    return {
        "PLATEBRIDGE_SECRET_KEY": SECRET_KEY,
        "PLATEBRIDGE_POD_NETWORKS": "127.0.0.0/8",
        "PLATEBRIDGE_REDIS_URL": REDIS_URL,
        "PLATEBRIDGE_NODE_URL": node_url,
        "PLATEBRIDGE_TUNNEL_REGISTRY_TTL": "6",
        "PLATEBRIDGE_STREAM_CONNECT_TIMEOUT": "1",
        "PLATEBRIDGE_STREAM_READ_TIMEOUT": "3",
        "PLATEBRIDGE_MIGRATE_ON_START": "false",
    }


def _serve(db_url: str, tmp: Path, name: str) -> tuple[PortalProc, str]:
    """A portal node we can SIGKILL; its node URL is its own address."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_dir = tmp / name
    log_dir.mkdir()
    return start_portal(db_url, _env(base), port=port, log_dir=log_dir), base


def test_two_portals_viewer_on_the_other_and_failover(tmp_path: Path, pg_url: str) -> None:
    _require_redis()
    tenant = seed_company(pg_url)
    set_mode(pg_url, tenant, "tunnel")
    a_proc, a = _serve(pg_url, tmp_path, "a")
    b_proc, b = _serve(pg_url, tmp_path, "b")
    balancer = Balancer(
        [("127.0.0.1", int(a.rsplit(":", 1)[1])), ("127.0.0.1", int(b.rsplit(":", 1)[1]))]
    )
    camera = TestCamera(tmp_path)
    camera.start()
    agent = Agent(tmp_path, agent_config(tmp_path, tenant, camera.url, portal_url=balancer.url))
    player: Player | None = None
    try:
        auth = login(b, tenant.email, tenant.password)
        wait_tunnel(b, auth, tenant.pod_id, timeout=40)
        assert portal_stats(a)["tunnels"] == 1 and portal_stats(b)["tunnels"] == 0
        token = stream_token(b, tenant)
        url = proxy_url(b, tenant, token)
        assert ffmpeg_decode(url, frames=10) >= 10  # B forwards to A, A's tunnel serves
        player = Player(url)
        player.start()
        wait_until(lambda: len(player.ok) >= 2, timeout=20, what="player playing via B")
        killed = time.monotonic()
        a_proc.proc.signal(signal.SIGKILL)
        recovered = wait_until(lambda: player.ok_after(killed + 0.5), timeout=30, what="recovery")
        assert recovered - killed < 20, recovered - killed
        assert portal_stats(b)["tunnels"] == 1  # the POD reconnected to the survivor
        assert pod_row(b, auth, tenant.pod_id)["tunnel_connected"] is True
    except BaseException:
        print(agent.output()[-3000:])
        print(b_proc.output()[-3000:])
        raise
    finally:
        if player is not None:
            player.stop()
        agent.close()
        camera.stop()
        balancer.close()
        for node in (a_proc, b_proc):
            node.stop()


def test_tunnel_drop_mid_segment_recovers_without_leaks(tmp_path: Path) -> None:
    from tests.support.portal import new_sqlite_url

    db_url = new_sqlite_url(tmp_path)
    env = _env("") | {"PLATEBRIDGE_REDIS_URL": "", "PLATEBRIDGE_MIGRATE_ON_START": "true"}
    env.pop("PLATEBRIDGE_NODE_URL")
    with run_portal(db_url, env, log_dir=tmp_path) as base:
        tenant = seed_company(db_url)
        set_mode(db_url, tenant, "tunnel")
        balancer = Balancer([("127.0.0.1", int(base.rsplit(":", 1)[1]))])
        camera = TestCamera(tmp_path, width=640, height=480)
        camera.start()
        config = agent_config(tmp_path, tenant, camera.url, portal_url=balancer.url)
        agent = Agent(tmp_path, config)
        pod_health = f"http://127.0.0.1:{config['listen_port']}/health"
        player: Player | None = None
        try:
            auth = login(base, tenant.email, tenant.password)
            wait_tunnel(base, auth, tenant.pod_id, timeout=40)
            token = stream_token(base, tenant)
            url = proxy_url(base, tenant, token)
            r = httpx.get(url, timeout=10)
            assert r.status_code == 200, r.text
            baseline_tasks = portal_stats(base)["tasks"]
            baseline_fds = agent.fd_count()
            player = Player(url)
            player.start()
            wait_until(lambda: len(player.ok) >= 2, timeout=20, what="player playing")

            # slow the POD→portal direction so a segment takes seconds, and cut it mid-way
            seg_uri = [ln for ln in httpx.get(url).text.splitlines() if ln.startswith("/")][-1]
            balancer.rate = 8_000
            got = 0
            failed: Exception | None = None
            with httpx.stream("GET", base + seg_uri, timeout=15) as seg:
                assert seg.status_code == 200  # the head is through; the body crawls
                total = int(seg.headers["content-length"])
                time.sleep(0.5)
                balancer.paused = True
                balancer.drop()
                try:
                    for chunk in seg.iter_raw():
                        got += len(chunk)
                except httpx.HTTPError as exc:
                    failed = exc
            assert got < total, (got, total)  # the drop really was mid-segment
            assert failed is not None
            time.sleep(2)
            balancer.rate = None
            back = time.monotonic()
            balancer.paused = False
            recovered = wait_until(lambda: player.ok_after(back), timeout=20, what="recovery")
            assert recovered - back < 8, recovered - back
            player.stop()
            # no leaks: no open tunnel streams either side, tasks and fds back to normal
            wait_until(
                lambda: (
                    portal_stats(base)["streams"] == 0
                    and httpx.get(pod_health).json()["tunnel"]["streams"] == 0
                ),
                timeout=15,
                what="no tunnel streams left",
            )
            wait_until(
                lambda: portal_stats(base)["tasks"] <= baseline_tasks + 2,
                timeout=15,
                what=f"portal tasks back to {baseline_tasks}",
            )
            assert httpx.get(pod_health).json()["tunnel"]["state"] == "connected"
            assert agent.fd_count() <= baseline_fds + 4
        except BaseException:
            print(agent.output()[-3000:])
            raise
        finally:
            if player is not None:
                player.stop()
            agent.close()
            camera.stop()
            balancer.close()
