"""The MSE live player end to end: Chromium → the real portal's live WebSocket (proxy) or the
POD's (direct) → the real POD agent → a real RTSP camera (the world of conftest.py). The player on
its own, against a paced fMP4 source, is tested in test_live_player.py."""

from __future__ import annotations

import re
import time

from playwright.sync_api import Page

from tests.support.procs import wait_until
from tests.web.conftest import TOKEN_TTL, World, assert_plays, sign_in
from tests.web.worlds import CAMERA_PATH, PageSession, progress, state, wait_advancing


def test_live_view_plays_mse_through_the_proxy(world: World, page: Page) -> None:
    sockets: list[str] = []
    http: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    page.on("request", lambda r: http.append(r.url))
    sign_in(page, world.url, world.a.email, world.a.password, CAMERA_PATH)
    assert_plays(page, seconds=2.0)
    wait_until(lambda: state(page)["delay"] < 1.0, timeout=10, what="near the edge")
    st = state(page)
    print(f"\nMSE through the proxy: buffered end - currentTime {st['delay']:.2f} s")
    assert st["player"] == "mse" and st["state"] == "playing", st
    assert re.fullmatch(r"LIVE · \d+\.\d s · H\.264 .+", st["label"]), st
    own = world.url.replace("http://", "ws://")
    live = f"{own}/api/pod/live/main-gate-pod?camera_id=gate-camera-1&token="
    assert sockets and all(u.startswith(live) for u in sockets), sockets
    # The video came over the socket: no HLS request, nothing to the POD from the browser.
    assert not any("proxy-stream" in u or world.agent.base in u for u in http), http
    # Tokens live TOKEN_TTL s; the open viewing (re-authorised by the session) goes on, on the
    # same socket, for more than two lifetimes.
    assert_plays(page, seconds=2.5 * TOKEN_TTL)
    assert len(sockets) == 1, sockets


def test_grid_plays_mse(world: World, page: Page) -> None:
    sign_in(page, world.url, world.a.email, world.a.password, "/cameras/grid")
    assert_plays(page, ".grid .player video", seconds=2)
    assert state(page, ".grid .player")["player"] == "mse"


def test_live_view_plays_mse_directly_from_the_pod(world: World, page: Page) -> None:
    sign_in(page, world.url, world.a.email, world.a.password, "/pods")
    row = page.locator('tr[data-pod="main-gate-pod"]')
    row.locator("select[name=stream_mode]").select_option("direct")
    row.locator("form[action$='/mode'] button").click()
    page.wait_for_url(f"{world.url}/pods")
    try:
        sockets: list[str] = []
        page.on("websocket", lambda ws: sockets.append(ws.url))
        response = page.goto(f"{world.url}{CAMERA_PATH}")
        assert response is not None
        pod_ws = world.agent.base.replace("http://", "ws://")
        connect_src = response.headers["content-security-policy"].split("connect-src")[1]
        assert f" {pod_ws}" in connect_src.split(";")[0]
        assert_plays(page, seconds=2.0)
        assert state(page)["player"] == "mse"
        assert sockets and all(
            u.startswith(f"{pod_ws}/live/gate-camera-1/ws?token=") for u in sockets
        ), sockets
    finally:
        page.goto(f"{world.url}/pods")
        row = page.locator('tr[data-pod="main-gate-pod"]')
        row.locator("select[name=stream_mode]").select_option("proxy")
        row.locator("form[action$='/mode'] button").click()
        page.wait_for_url(f"{world.url}/pods")


def test_open_page_plays_again_soon_after_a_camera_outage(world: World, page: Page) -> None:
    sign_in(page, world.url, world.a.email, world.a.password, CAMERA_PATH)
    assert_plays(page, seconds=1.5)
    page.evaluate("window.__pbSamePage = true")
    session = PageSession(page, world.url)
    try:
        world.camera.stop()
        wait_until(
            lambda: progress(page)["state"] != "playing",
            timeout=30,
            what="player noticed the outage",
        )
        wait_until(
            lambda: not session.live_serving(), timeout=30, interval=0.2, what="live stream gone"
        )
        time.sleep(5)
        failed = progress(page)
        assert failed["state"] in ("reconnecting", "offline"), failed
        world.camera.start()
        wait_until(session.live_serving, timeout=60, interval=0.1, what="live stream serving")
        back = time.monotonic()
        wait_advancing(page)
        recovered = time.monotonic() - back
        print(f"\nMSE player recovered {recovered:.2f} s after the live stream served again")
        assert recovered < 2.0, recovered
        assert page.evaluate("window.__pbSamePage === true")
        assert state(page)["player"] == "mse"
        assert_plays(page, seconds=1.5)
    finally:
        session.client.close()
        if world.camera.proc is None:
            world.camera.start()
