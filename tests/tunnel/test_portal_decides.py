"""The portal decides the tunnel: a POD whose config says nothing about ``tunnel`` opens it when
the heartbeat answer says so (modes tunnel/auto), closes it when the pod is set to proxy, and
opens it again. The portal cannot reach the POD directly (loopback is outside its default
pod networks), so playback works only through the tunnel."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.camera import TestCamera, camera_available
from tests.support.portal import login, new_sqlite_url, run_portal, seed_company
from tests.support.procs import wait_until
from tests.tunnel.support import (
    SECRET_KEY,
    AgentProc,
    agent_config,
    ffmpeg_decode,
    pod_row,
    proxy_url,
    set_mode,
    stream_token,
    wait_tunnel,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not camera_available(), reason="needs ffmpeg and the GStreamer camera"),
]


def test_pod_follows_the_portal_tunnel_answer(tmp_path: Path) -> None:
    db_url = new_sqlite_url(tmp_path)
    env = {
        "PLATEBRIDGE_SECRET_KEY": SECRET_KEY,
        "PLATEBRIDGE_REDIS_URL": "",
        "PLATEBRIDGE_MIGRATE_ON_START": "true",
        "PLATEBRIDGE_STREAM_CONNECT_TIMEOUT": "1",
    }
    with run_portal(db_url, env, log_dir=tmp_path) as base:
        tenant = seed_company(db_url)
        set_mode(db_url, tenant, "tunnel")
        camera = TestCamera(tmp_path, width=320, height=240)
        camera.start()
        config = agent_config(tmp_path, tenant, camera.url, portal_url=base)
        del config["tunnel"]  # the site's config says nothing about a tunnel
        agent = AgentProc(tmp_path, config)
        pod_health = f"http://127.0.0.1:{config['listen_port']}/health"
        try:
            auth = login(base, tenant.email, tenant.password)
            wait_tunnel(base, auth, tenant.pod_id, timeout=40)
            url = proxy_url(base, tenant, stream_token(base, tenant))
            assert ffmpeg_decode(url) >= 10

            set_mode(db_url, tenant, "proxy")
            wait_until(
                lambda: not pod_row(base, auth, tenant.pod_id)["tunnel_connected"],
                timeout=20,
                what="tunnel closed after the portal said no",
            )
            assert httpx.get(pod_health, timeout=5).json()["tunnel"]["state"] == "off"

            set_mode(db_url, tenant, "auto")
            wait_tunnel(base, auth, tenant.pod_id, timeout=30)
            url = proxy_url(base, tenant, stream_token(base, tenant))
            assert ffmpeg_decode(url) >= 10
        finally:
            agent.close()
            camera.stop()
