"""The portal decides the tunnel: a POD whose config says nothing about ``tunnel`` opens it when
the heartbeat answer says so (modes tunnel/auto), closes it when the pod is set to proxy, and
opens it again. The portal cannot reach the POD directly (loopback is outside its default
pod networks), so playback works only through the tunnel."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.camera import camera_available
from tests.support.portal import login, new_sqlite_url
from tests.support.procs import wait_until
from tests.tunnel.support import (
    ffmpeg_decode,
    pod_row,
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


def test_pod_follows_the_portal_tunnel_answer(tmp_path: Path) -> None:
    env = {
        "PLATEBRIDGE_REDIS_URL": "",
        "PLATEBRIDGE_MIGRATE_ON_START": "true",
        "PLATEBRIDGE_STREAM_CONNECT_TIMEOUT": "1",
    }
    # without "tunnel": the site's config says nothing about a tunnel
    with tunnel_world(tmp_path, new_sqlite_url(tmp_path), env, without=["tunnel"]) as w:
        base, tenant = w.base, w.tenant
        auth = login(base, tenant.email, tenant.password)
        wait_tunnel(base, auth, tenant.pod_id, timeout=40)
        url = proxy_url(base, tenant, stream_token(base, tenant))
        assert ffmpeg_decode(url) >= 10

        set_mode(w.db_url, tenant, "proxy")
        wait_until(
            lambda: not pod_row(base, auth, tenant.pod_id)["tunnel_connected"],
            timeout=20,
            what="tunnel closed after the portal said no",
        )
        assert httpx.get(w.pod_health, timeout=5).json()["tunnel"]["state"] == "off"

        set_mode(w.db_url, tenant, "auto")
        wait_tunnel(base, auth, tenant.pod_id, timeout=30)
        url = proxy_url(base, tenant, stream_token(base, tenant))
        assert ffmpeg_decode(url) >= 10
