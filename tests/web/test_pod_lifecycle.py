"""Decommissioning a POD from the PODs page in Chromium, against a real portal, a real POD agent
with its tunnel up and a real RTSP test camera (issue 15's acceptance): the typed confirmation,
the tunnel closed by the portal and refused when the agent dials again, the heartbeat refused,
the camera gone from the cameras page; then re-enabled from the page (new key shown once)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page

from tests.support.camera import TestCamera, camera_available
from tests.support.portal import login
from tests.support.procs import wait_until
from tests.tunnel.support import SECRET_KEY, pod_row, portal_stats, wait_tunnel
from tests.web.conftest import CHROMIUM, sign_in
from tests.web.worlds import CameraWorld, camera_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CameraWorld]:
    if not camera_available() or not Path(CHROMIUM).exists():
        pytest.skip("needs GStreamer's RTSP server, ffmpeg and /usr/bin/chromium")
    tmp = tmp_path_factory.mktemp("pod-lifecycle")
    env = {"PLATEBRIDGE_POD_NETWORKS": "127.0.0.0/8", "PLATEBRIDGE_SECRET_KEY": SECRET_KEY}
    camera = TestCamera(tmp, pattern="ball", width=320, height=240)
    with camera_world(tmp, camera, env, tunnel=True) as w:
        yield w


def heartbeat(world: CameraWorld, key: str) -> httpx.Response:
    t = world.tenant
    body = {"pod_id": t.pod_id, "ip_address": "127.0.0.1", "status": "online", "cameras": []}
    return httpx.post(
        f"{world.url}/api/pod/heartbeat",
        headers={"Authorization": f"Bearer {key}"},
        json=body,
        timeout=10,
    )


def test_decommission_and_reenable_from_the_page(world: CameraWorld, page: Page) -> None:
    t = world.tenant
    auth = login(world.url, t.email, t.password)
    wait_tunnel(world.url, auth, t.pod_id)
    assert portal_stats(world.url)["tunnels"] == 1

    sign_in(page, world.url, t.email, t.password, path="/pods")
    row = page.locator(f'tr[data-pod="{t.pod_id}"]')
    row.locator("summary").click()
    # A wrong confirmation: refused with the message, nothing changes.
    row.locator('input[name="confirm"]').fill("not-the-pod")
    row.locator('button:has-text("Decommission")').click()
    assert "to confirm decommissioning it" in page.locator('[role="alert"]').inner_text()
    assert pod_row(world.url, auth, t.pod_id)["tunnel_connected"]

    row = page.locator(f'tr[data-pod="{t.pod_id}"]')
    row.locator("summary").click()
    row.locator('input[name="confirm"]').fill(t.pod_id)
    row.locator('button:has-text("Decommission")').click()
    page.wait_for_url(f"{world.url}/pods")
    row = page.locator(f'tr[data-pod="{t.pod_id}"]')
    assert row.get_attribute("data-decommissioned") == "true"
    assert row.locator('[data-status="decommissioned"]').inner_text().lower() == "decommissioned"

    # The portal closed the tunnel; the agent's redials (every <= 2 s) are refused.
    wait_until(lambda: portal_stats(world.url)["tunnels"] == 0, timeout=15, what="tunnel closed")
    wait_until(
        lambda: "portal refused the connection (HTTP 403)" in world.agent.output(),
        timeout=30,
        what="the agent's tunnel redial refused",
    )
    assert portal_stats(world.url)["tunnels"] == 0
    r = heartbeat(world, t.api_key)
    assert r.status_code == 403 and r.json()["error"] == "pod_decommissioned", r.text
    page.goto(f"{world.url}/cameras")
    assert page.locator(".camera-card").count() == 0
    cams = httpx.get(f"{world.url}/api/cameras", headers=auth, timeout=10).json()["cameras"]
    assert cams == []

    # Re-enable: a new key and stream secret, shown once on the answering page.
    page.goto(f"{world.url}/pods")
    page.locator(f'tr[data-pod="{t.pod_id}"] button:has-text("Re-enable")').click()
    new_key = page.locator("#shown-key").input_value()
    assert new_key.startswith("pbk_") and new_key != t.api_key
    assert page.locator("#shown-secret").input_value() not in ("", t.stream_token_secret)
    assert heartbeat(world, t.api_key).status_code == 401  # the old key stays revoked
    assert heartbeat(world, new_key).status_code == 200
    page.goto(f"{world.url}/audit")
    trail = page.locator('table[data-trail="changes"]').inner_text()
    assert "pod.decommission" in trail and "pod.reenable" in trail and t.email in trail
    assert new_key not in page.content()
