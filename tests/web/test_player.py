"""The live player in Chromium: where the stream token goes, and how fast an open page comes back
after a camera outage (real portal, POD agent, RTSP camera; see conftest.py)."""

from __future__ import annotations

import time

from playwright.sync_api import Page

from tests.support.procs import free_port, wait_until
from tests.web.conftest import World, assert_plays, sign_in
from tests.web.worlds import CAMERA_PATH as LIVE_PATH
from tests.web.worlds import PageSession, progress

#: The HLS player (the fallback of live.js), forced.
CAMERA_PATH = f"{LIVE_PATH}?player=hls"

# Calls the real player's hls.js xhrSetup with a recording stand-in for the XHR, for each URL.
XHR_SETUP_JS = """
(urls) => {
  const player = document.querySelector('.player').platebridgePlayer;
  return urls.map((url) => {
    const opened = [];
    player.hls.config.xhrSetup({open: (...args) => opened.push(args[1])}, url);
    return opened[0];
  });
}
"""


def test_token_goes_only_to_the_proxy(world: World, page: Page) -> None:
    sign_in(page, world.url, world.a.email, world.a.password, CAMERA_PATH)
    assert_plays(page, seconds=1.5)
    foreign = f"http://127.0.0.2:{free_port()}/x.ts"
    proxy = f"{world.url}/api/pod/proxy-stream/main-gate-pod/segment/seg_1.ts"
    urls = [
        foreign,
        f"{foreign}?token=old",
        f"{world.url}/api/cameras",
        f"{world.url}/api/pod/stream-token?token=old",
        f"{world.agent.base}/stream/gate-camera-1/seg_1.ts",  # the POD, but proxy mode
        proxy,
        "/api/pod/proxy-stream/main-gate-pod?camera_id=gate-camera-1",
    ]
    opened: list[str] = page.evaluate(XHR_SETUP_JS, urls)
    assert [("token=" in u) for u in opened] == [False] * 5 + [True] * 2, opened
    assert opened[0] == foreign and opened[2] == f"{world.url}/api/cameras"
    assert opened[5].startswith(f"{proxy}?token=")
    # The exported decision, with a direct-mode origin: only that exact origin qualifies.
    pod = world.agent.base
    decide = "([u, o]) => window.PlateBridgePlayer.tokenAllowed(u, o)"
    assert page.evaluate(decide, [f"{pod}/stream?token=x", pod]) is True
    assert page.evaluate(decide, [foreign, pod]) is False
    assert page.evaluate(decide, [f"{world.url}/api/cameras", pod]) is False
    assert page.evaluate(decide, [pod.replace("127.0.0.1", "127.0.0.2") + "/stream", pod]) is False


def test_open_page_recovers_quickly_after_a_camera_outage(world: World, page: Page) -> None:
    sign_in(page, world.url, world.a.email, world.a.password, CAMERA_PATH)
    assert_plays(page, seconds=1.5)
    page.evaluate("window.__pbSamePage = true")  # a reload would lose it
    session = PageSession(page, world.url)
    try:
        world.camera.stop()
        wait_until(
            lambda: not session.hls_serving(), timeout=30, interval=0.2, what="playlist gone"
        )
        wait_until(
            lambda: progress(page)["state"] != "playing",
            timeout=30,
            what="player noticed the outage",
        )
        time.sleep(18)  # long enough for the old back-off to have grown to 16 s
        failed = progress(page)
        assert failed["state"] in ("reconnecting", "offline"), failed
        world.camera.start()
        wait_until(session.hls_serving, timeout=60, interval=0.2, what="playlist serving again")
        back = time.monotonic()
        before = progress(page)["t"]

        def advancing() -> bool:
            now = progress(page)
            return bool(now["t"] > 0 and now["t"] != before and now["frozen"] < 0.5)

        wait_until(advancing, timeout=30, interval=0.1, what="video advancing again")
        recovered = time.monotonic() - back
        print(f"\nplayer recovered {recovered:.2f} s after the playlist served again")
        assert recovered < 10, recovered
        assert progress(page)["state"] == "playing"
        assert page.evaluate("window.__pbSamePage === true")  # same page, no reload
        assert_plays(page, seconds=1.5)
    finally:
        session.client.close()
        if world.camera.proc is None:
            world.camera.start()
