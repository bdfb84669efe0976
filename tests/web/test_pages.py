"""The portal's pages in a real Chromium against a real portal + POD agent + RTSP camera."""

from __future__ import annotations

import re
import time

import httpx
from playwright.sync_api import Page, Request

from tests.support.procs import wait_until
from tests.web.conftest import (
    TOKEN_TTL,
    World,
    age_pods,
    assert_plays,
    seed_company,
    sign_in,
)

CAMERA_PATH = "/cameras/main-gate-pod/gate-camera-1"
#: The HLS player (the fallback), forced: these tests look at its HTTP requests. The default
#: MSE player is tested in test_live_player.py.
HLS_PATH = f"{CAMERA_PATH}?player=hls"


def test_wrong_password_shows_the_message(world: World, page: Page) -> None:
    page.goto(f"{world.url}/login")
    page.fill("#email", world.a.email)
    page.fill("#password", "not-the-password")
    page.click("button[type=submit]")
    alert = page.locator("#login-error")
    assert alert.inner_text() == "Wrong e-mail or password."
    assert page.locator("#email").input_value() == world.a.email
    assert "not-the-password" not in page.content()
    cookies = {c["name"] for c in page.context.cookies()}
    assert "pb_session" not in cookies


def test_cameras_page_lists_the_pods_cameras(world: World, page: Page) -> None:
    sign_in(page, world.url, world.a.email, world.a.password)
    session = next(c for c in page.context.cookies() if c["name"] == "pb_session")
    assert session["httpOnly"] and session["sameSite"] == "Lax"
    card = page.locator('[data-camera="main-gate-pod/gate-camera-1"]')
    assert card.get_attribute("data-state") == "live"
    text = card.inner_text()
    for expected in ("Main Gate Camera", "Main Gate POD", "Main Gate", "main entrance"):
        assert expected in text
    assert re.search(r"just now|\d+ s ago", text)
    img = card.locator("img")
    img.scroll_into_view_if_needed()
    wait_until(
        lambda: img.evaluate("i => i.complete && i.naturalWidth > 0"), what="thumbnail loaded"
    )
    # Filters: by status and by site.
    page.select_option("#f-status", "offline")
    page.click(".filters button[type=submit]")
    assert page.locator(".camera-card").count() == 0
    assert "No camera matches" in page.inner_text("main")
    page.goto(f"{world.url}/cameras?site=Main+Gate&status=live")
    assert page.locator(".camera-card").count() == 1


def test_live_view_plays_through_the_proxy(world: World, page: Page) -> None:
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    sign_in(page, world.url, world.a.email, world.a.password, HLS_PATH)
    result = assert_plays(page)
    assert result["state"] == "playing"
    media = [u for u in requests if "/stream?" in u or "proxy-stream" in u or "/segment/" in u]
    assert media and all(u.startswith(f"{world.url}/api/pod/proxy-stream/") for u in media)
    assert any("/segment/" in u and "token=" in u for u in media)
    assert not any(world.agent.base in u for u in requests)
    assert any(u.endswith("/static/vendor/hls.min.js") for u in requests)  # loaded on demand


def test_token_lifetime_of_seconds_does_not_stop_playback(world: World, page: Page) -> None:
    issued: list[float] = []

    def on_request(req: Request) -> None:
        if req.url.endswith("/api/pod/stream-token") and req.method == "POST":
            issued.append(time.monotonic())

    page.on("request", on_request)
    scripts: list[str] = []
    page.on("request", lambda r: scripts.append(r.url) if r.resource_type == "script" else None)
    sign_in(page, world.url, world.a.email, world.a.password, CAMERA_PATH)
    watch = 2.5 * TOKEN_TTL + 2
    result = assert_plays(page, seconds=watch)
    # the MSE path never fetches hls.js (624 KB, ~100 ms of parsing on every live page)
    assert scripts and not any("hls.min.js" in u for u in scripts)
    assert page.evaluate("typeof window.Hls") == "undefined"
    assert result["t1"] - result["t0"] > watch * 0.6, result
    assert result["state"] == "playing"
    assert len(issued) >= 3, f"tokens were not renewed: {len(issued)} requests"


def test_grid_plays_the_companys_cameras(world: World, page: Page) -> None:
    sign_in(page, world.url, world.a.email, world.a.password, "/cameras/grid")
    assert page.locator(".grid .player").count() == 1
    assert_plays(page, ".grid .player video", seconds=2)


def test_live_view_plays_directly_from_the_pod(world: World, page: Page) -> None:
    sign_in(page, world.url, world.a.email, world.a.password, "/pods")
    row = page.locator('tr[data-pod="main-gate-pod"]')
    assert "127.0.0.1" in row.inner_text()
    row.locator("select[name=stream_mode]").select_option("direct")
    row.locator("form[action$='/mode'] button").click()
    page.wait_for_url(f"{world.url}/pods")
    assert page.locator('tr[data-pod="main-gate-pod"] select').input_value() == "direct"
    try:
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        response = page.goto(f"{world.url}{HLS_PATH}")
        assert response is not None
        csp = response.headers["content-security-policy"]
        assert f"connect-src 'self' {world.agent.base}" in csp
        assert_plays(page)
        pod_requests = [u for u in requests if u.startswith(world.agent.base)]
        assert any("/stream?token=" in u for u in pod_requests)
        assert any(re.search(r"/stream/gate-camera-1/seg_\d+\.ts\?token=", u) for u in requests)
        assert not any("proxy-stream" in u for u in requests)
    finally:
        page.goto(f"{world.url}/pods")
        row = page.locator('tr[data-pod="main-gate-pod"]')
        row.locator("select[name=stream_mode]").select_option("proxy")
        row.locator("form[action$='/mode'] button").click()
        page.wait_for_url(f"{world.url}/pods")


def test_second_company_sees_none_of_it(world: World, page: Page) -> None:
    sign_in(page, world.url, world.b.email, world.b.password)
    assert page.locator(".camera-card").count() == 0
    assert "No cameras yet" in page.inner_text("main")
    response = page.goto(f"{world.url}{CAMERA_PATH}")
    assert response is not None and response.status == 404
    assert "not found" in page.inner_text("main")
    assert page.locator("video").count() == 0
    page.goto(f"{world.url}/pods")
    pods = page.locator("tr[data-pod]")
    assert [pods.nth(i).get_attribute("data-pod") for i in range(pods.count())] == ["other-pod"]
    assert "127.0.0.1" not in page.content()
    status = page.evaluate(
        """async () => (await fetch('/api/pod/stream-token', {method: 'POST',
            headers: {'Content-Type': 'application/json',
                      'X-CSRF-Token': document.querySelector('meta[name=csrf-token]').content},
            body: JSON.stringify({pod_id: 'main-gate-pod', camera_id: 'gate-camera-1'})})).status"""
    )
    assert status == 404


def test_stopped_pod_shows_offline(world: World, page: Page) -> None:
    from tests.support.agent import Agent
    from tests.web.conftest import pod_config

    c = seed_company(world.db_url, "Company C", pod_id="side-gate-pod")
    folder = world.tmp / "agent-c"
    folder.mkdir()
    agent = Agent(folder, pod_config(folder, c, world.url, world.camera.url))
    try:
        sign_in(page, world.url, c.email, c.password)
        wait_until(
            lambda: (
                page.reload()
                and page.locator(
                    '[data-camera="side-gate-pod/gate-camera-1"][data-state="live"]'
                ).count()
                == 1
            ),
            timeout=30,
            what="camera registered live",
        )
        agent.stop()
    finally:
        agent.close()
    age_pods(world.db_url, c.company_id, 3600)  # as if the default 5 min had long passed
    page.reload()
    card = page.locator('[data-camera="side-gate-pod/gate-camera-1"]')
    assert card.get_attribute("data-state") == "offline"
    assert "POD offline: last heartbeat 1 h ago" in card.inner_text()
    assert card.locator("img").count() == 0  # no thumbnail, no spinner: plain words
    page.goto(f"{world.url}/cameras/side-gate-pod/gate-camera-1")
    status = page.locator(".player-status")
    wait_until(lambda: "offline" in status.inner_text(), timeout=15, what="offline message")


def test_security_headers_and_csrf(world: World, page: Page) -> None:
    for path in ("/login", "/cameras", "/static/player.js", "/health", "/api/cameras"):
        r = httpx.get(f"{world.url}{path}")
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp, path
        assert "frame-ancestors 'none'" in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["referrer-policy"] == "no-referrer"
    # No inline script anywhere on the pages.
    sign_in(page, world.url, world.a.email, world.a.password)
    for path in ("/cameras", CAMERA_PATH, "/pods", "/audit", "/cameras/grid"):
        page.goto(f"{world.url}{path}")
        assert page.locator("script:not([src])").count() == 0, path
    # The session cookie alone cannot post a form: the CSRF token is required.
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    with httpx.Client(base_url=world.url, cookies={"pb_session": cookies["pb_session"]}) as c:
        r = c.post("/pods/main-gate-pod/rotate-key", data={"csrf_token": "forged"})
        assert r.status_code == 403 and "CSRF" in r.text
        r = c.post("/api/pod/stream-token", json={"pod_id": "x", "camera_id": "y"})
        assert r.status_code == 403 and r.json()["error"] == "csrf_failed"
    # Signed-out page visits go to the sign-in page, keeping where they were going.
    r = httpx.get(f"{world.url}{CAMERA_PATH}")
    assert r.status_code == 303 and r.headers["location"] == f"/login?next={CAMERA_PATH}"
    r = httpx.get(f"{world.url}/login?next=//evil.example/")
    assert 'name="next" value="/cameras"' in r.text
