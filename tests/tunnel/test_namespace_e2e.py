"""Method 4 end to end: a POD behind "NAT" (its own network namespace) plays through the tunnel.

The POD agent and its camera run in a namespace joined to the host by a veth pair. nftables
in the namespace drops every *new* inbound connection (``ct state established,related
accept; iifname veth drop``), exactly what a NAT router does to a POD on a home or carrier
network: the POD can dial the portal (host side of the veth), the portal cannot dial the POD.
So the plain proxy times out (504), and the tunnel plays.

Where namespaces cannot be created the test says so and falls back to a POD on loopback whose
reported address the SSRF guard refuses (proxy: 409), except on CI, where it fails.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.support.agent import Agent
from tests.support.camera import camera_available
from tests.support.portal import login, new_sqlite_url, run_portal, seed_company
from tests.tunnel.support import (
    SECRET_KEY,
    NsCamera,
    agent_config,
    ffmpeg_decode,
    netns,
    proxy_url,
    set_mode,
    stream_token,
    tunnel_world,
    wait_tunnel,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not camera_available(), reason="needs ffmpeg and the GStreamer camera"),
]


def _portal_env(networks: str) -> dict[str, str]:
    return {
        "PLATEBRIDGE_SECRET_KEY": SECRET_KEY,
        "PLATEBRIDGE_POD_NETWORKS": networks,
        "PLATEBRIDGE_STREAM_CONNECT_TIMEOUT": "1",
        "PLATEBRIDGE_STREAM_READ_TIMEOUT": "3",
    }


def _play_both_ways(base: str, db_url: str, tenant, proxy_status: int) -> None:  # type: ignore[no-untyped-def]
    auth = login(base, tenant.email, tenant.password)
    wait_tunnel(base, auth, tenant.pod_id, timeout=40)
    # the plain proxy cannot reach the POD
    set_mode(db_url, tenant, "proxy")
    started = time.monotonic()
    r = httpx.get(
        f"{base}/api/pod/proxy-stream/{tenant.pod_id}",
        params={"camera_id": "gate-camera-1"},
        headers=auth,
        timeout=20,
    )
    assert r.status_code == proxy_status, r.text
    assert time.monotonic() - started < 10
    # the tunnel: ffmpeg as the HLS client decodes video through the portal's proxy URL
    set_mode(db_url, tenant, "tunnel")
    token = stream_token(base, tenant)
    assert ffmpeg_decode(proxy_url(base, tenant, token), frames=15) >= 15
    # auto: the address does not answer (or is refused), so the tunnel is chosen
    set_mode(db_url, tenant, "auto")
    r = httpx.get(proxy_url(base, tenant, token), timeout=20)
    assert r.status_code == 200 and r.text.startswith("#EXTM3U"), r.text
    assert "token=" in r.text and tenant.stream_token_secret not in r.text
    r = httpx.get(f"{base}/api/audit", headers=auth, params={"camera_id": "gate-camera-1"})
    assert r.status_code == 200
    assert "tunnel" in {e["method"] for e in r.json()["events"]}


def test_pod_behind_nat_plays_through_the_tunnel(tmp_path: Path) -> None:
    from tests.tunnel.support import require_netns_or_fallback

    db_url = new_sqlite_url(tmp_path)
    if not require_netns_or_fallback():
        _fallback(tmp_path, db_url)
        return
    with netns(nat=True) as ns:
        env = _portal_env(f"{ns.host_ip.rsplit('.', 1)[0]}.0/24")
        with run_portal(db_url, env, host=ns.host_ip, log_dir=tmp_path) as base:
            tenant = seed_company(db_url)
            camera = NsCamera(tmp_path, ns.prefix)
            camera.start()
            agent = None
            try:
                config = agent_config(
                    tmp_path,
                    tenant,
                    camera.url,
                    listen_host="0.0.0.0",
                    advertise_address=ns.pod_ip,
                    portal_url=base,
                )
                # inside the namespace: its /health is not reachable from here
                agent = Agent(tmp_path, config, prefix=ns.prefix, wait=False)
                # the portal really cannot open a connection to the POD
                with pytest.raises(httpx.ConnectTimeout):
                    httpx.get(f"http://{ns.pod_ip}:{config['listen_port']}/health", timeout=1)
                _play_both_ways(base, db_url, tenant, proxy_status=504)
            except BaseException:
                if agent is not None:
                    print(agent.output()[-3000:])
                raise
            finally:
                if agent is not None:
                    agent.close()
                camera.stop()


def _fallback(tmp_path: Path, db_url: str) -> None:
    """No namespaces: a POD on loopback whose address the SSRF guard refuses (proxy → 409)."""
    with tunnel_world(tmp_path, db_url, _portal_env("10.0.0.0/8"), mode=None) as w:
        _play_both_ways(w.base, db_url, w.tenant, proxy_status=409)
