"""Disabling a user while they watch, in a real Chromium (the default MSE player on the live
WebSocket through the portal, a real POD agent and RTSP camera): the picture stops within the
stated lifetime (docs/portal.md, Users lifecycle: RECHECK_SECONDS 30 s + the 2 s authorisation
cache), the player says the session ended instead of playing, and the next page load is the
sign-in form.

In this world the stream tokens live 4 s (``TOKEN_TTL``), so what ends the viewing first is
the player's token renewal (at 2/3 of the lifetime) refused with 401; with the default 1 h
tokens it is the live socket's re-check (``tests/portal/test_user_disable_live.py`` tests that
path on its own)."""

from __future__ import annotations

import time
import uuid

import httpx
from playwright.sync_api import Page

from tests.support.portal import cli_json, login
from tests.web.conftest import World, assert_plays, sign_in

CAMERA_PATH = "/cameras/main-gate-pod/gate-camera-1"
#: RECHECK_SECONDS + stream_auth_cache_seconds (docs/portal.md), and slack for a loaded machine.
LIFETIME = 30 + 2
SLACK = 15

STOPPED_JS = """
() => {
  const root = document.querySelector('.player');
  const video = root.querySelector('video');
  return root.dataset.state !== 'playing' ? {state: root.dataset.state, t: video.currentTime}
                                          : null;
}
"""


def test_disabled_viewers_live_view_stops(world: World, page: Page) -> None:
    email = f"watching-{uuid.uuid4().hex[:6]}@example.test"
    password = "watching-password-1"
    made = cli_json(world.db_url, "user", "create", "--company", world.a.company_id,
                    "--email", email, "--password", password, "--role", "viewer")  # fmt: skip
    sign_in(page, world.url, email, password, CAMERA_PATH)
    assert_plays(page)
    assert page.get_attribute(".player", "data-player") == "mse"
    admin = login(world.url, world.a.email, world.a.password)
    r = httpx.post(f"{world.url}/api/users/{made['user_id']}/disable", headers=admin)
    assert r.status_code == 200 and r.json()["status"] == "disabled"
    disabled = time.monotonic()
    handle = page.wait_for_function(STOPPED_JS, timeout=(LIFETIME + SLACK) * 1000, polling=250)
    stopped_after = time.monotonic() - disabled
    print(f"live view stopped {stopped_after:.1f} s after the disable")  # the figure, with -s
    assert stopped_after < LIFETIME + SLACK
    state = handle.json_value()
    assert state["state"] != "playing"
    page.wait_for_function(
        "() => document.querySelector('.player-status').textContent.includes('session has ended')",
        timeout=SLACK * 1000,
    )
    # No more pictures: the video does not advance any more.
    t0 = page.evaluate("() => document.querySelector('.player video').currentTime")
    page.wait_for_timeout(3000)
    t1 = page.evaluate("() => document.querySelector('.player video').currentTime")
    assert t1 - t0 < 0.5, (t0, t1)
    page.reload()
    page.wait_for_url("**/login**")
