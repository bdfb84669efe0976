"""Issue 13's timeline page in Chromium: a real portal, a real POD agent recording a real RTSP
test camera that burns the wall clock into every picture, headless Chromium.

One recording (~40 s) is shared by the module. The page plays a moment ~20 s back through the
proxy and through the tunnel; the clock read from the decoded frame (bench/clock_reader.js) is the
time asked for within 0.5 s, and ``#footage-clock`` says the same as the picture. Frame steps,
speeds, the day bar, "Back 30 s" from the live view, the truth on screen (no recording, the
future), a clip download, a share link opened signed out, and the viewer role (no link, 403)."""

from __future__ import annotations

import json
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page

from tests.camera._probe import clock_code
from tests.support.camera import PROFILES, TestCamera, camera_available
from tests.support.portal import cli, login
from tests.support.procs import REPO, wait_until
from tests.tunnel.support import wait_tunnel
from tests.web.conftest import CHROMIUM, sign_in
from tests.web.worlds import CAMERA_ID, CAMERA_PATH, POD_ID, CameraWorld, camera_world

pytestmark = pytest.mark.e2e

READER = REPO / "bench" / "clock_reader.js"
MODULUS = clock_code().MODULUS
FOOTAGE_PATH = f"{CAMERA_PATH}/footage"
RECORD_S = 40
VIDEO = ".footage-player video"

# Before the page's scripts: every 10 ms, the first picture whose burned-in clock reads since
# the page opened or since the last click (armed in the click's capture phase, so no picture
# from before the click's seek can count).
FIRST_PICTURE_JS = """
window.__pbFirst = null;
document.addEventListener('click', () => { window.__pbFirst = null; }, true);
(function sample() {
  const v = document.querySelector('.footage-player video') || document.querySelector('video');
  const ready = v && v.readyState >= 2 && !v.seeking && window.PlateBridgeClock;
  if (window.__pbFirst === null && ready) {
    const r = PlateBridgeClock.read(v);
    if (r.stamp !== null) { window.__pbFirst = {stamp: r.stamp, at: performance.now()}; }
  }
  setTimeout(sample, 10);
})();
"""

# Evaluated in the page: wait for a picture whose burned-in clock reads (not while seeking);
# its stamp (ms mod 2^40), #footage-clock at that moment, the player's state.
PICTURE_JS = """
async ({timeout}) => {
  const v = document.querySelector('.footage-player video');
  const deadline = performance.now() + timeout;
  while (performance.now() < deadline) {
    if (v.readyState >= 2 && !v.seeking) {
      const r = PlateBridgeClock.read(v);
      if (r.stamp !== null) {
        return {stamp: r.stamp, clock: document.querySelector('#footage-clock').textContent,
                paused: v.paused, rate: v.playbackRate, at: performance.now(),
                state: v.closest('.player').dataset.state};
      }
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  const s = v.closest('.player');
  const status = s.querySelector('.player-status').textContent;
  return {stamp: null, state: s.dataset.state, status};
}
"""


@dataclass
class FootageWorld:
    cw: CameraWorld
    auth: dict[str, str]
    recorded_from: float

    @property
    def url(self) -> str:
        return self.cw.url

    def user(self, role: str) -> tuple[str, str]:
        """A fresh user of the tenant with ``role``: (email, password)."""
        email = f"{role}-{uuid.uuid4().hex[:8]}@example.test"
        password = f"pw-{uuid.uuid4().hex[:12]}"
        cli(
            self.cw.db_url,
            *("user", "create", "--company", self.cw.tenant.company_id, "--email", email),
            *("--password", password, "--role", role),
        )
        return email, password

    def set_method(self, method: str) -> None:
        self.cw.set_mode(method)
        if method == "tunnel":
            wait_tunnel(self.url, self.auth, POD_ID, timeout=30)


def recorded_seconds(base: str, auth: dict[str, str], since: float) -> float:
    r = httpx.get(
        f"{base}/api/footage/{POD_ID}",
        params={"camera_id": CAMERA_ID, "from": since, "to": time.time() + 5},
        headers=auth,
        timeout=10,
    )
    if r.status_code != 200:
        return 0.0
    spans = [s for s in r.json()["spans"] if s["kind"] == "recording"]
    return sum(s["end"] - s["start"] for s in spans)


@pytest.fixture(scope="module")
def fw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FootageWorld]:
    if not camera_available() or not Path(CHROMIUM).exists():
        pytest.skip("needs GStreamer's RTSP server, ffmpeg and /usr/bin/chromium")
    tmp = tmp_path_factory.mktemp("footage")
    env = {"PLATEBRIDGE_POD_NETWORKS": "127.0.0.0/8", "PLATEBRIDGE_STREAM_TOKEN_TTL": "30"}
    camera = TestCamera(tmp, profile=PROFILES["clock"])
    with camera_world(tmp, camera, env, tunnel=True) as cw:
        auth = login(cw.url, cw.tenant.email, cw.tenant.password)
        since = time.time() - 60
        wait_until(
            lambda: recorded_seconds(cw.url, auth, since) >= RECORD_S,
            timeout=RECORD_S + 60,
            interval=2,
            what=f"{RECORD_S} s recorded",
        )
        first = httpx.get(
            f"{cw.url}/api/footage/{POD_ID}",
            params={"camera_id": CAMERA_ID, "from": since, "to": time.time()},
            headers=auth,
            timeout=10,
        ).json()
        recorded = [s["start"] for s in first["spans"] if s["kind"] == "recording"]
        yield FootageWorld(cw, auth, min(recorded))


@pytest.fixture
def reader_page(browser: Browser) -> Iterator[Page]:
    """A tab with the clock reader; fails the test on any CSP violation or page error."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    tab = ctx.new_page()
    tab.add_init_script(path=str(READER))
    tab.add_init_script(FIRST_PICTURE_JS)
    problems: list[str] = []
    tab.on(
        "console",
        lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None,
    )
    tab.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    try:
        yield tab
    finally:
        ctx.close()
    assert problems == [], problems


def picture(page: Page, timeout: float = 15) -> dict[str, Any]:
    value: dict[str, Any] = page.evaluate(PICTURE_JS, {"timeout": timeout * 1000})
    assert value["stamp"] is not None, f"no readable picture: {value}"
    return value


def settled_picture(page: Page, timeout: float = 10) -> dict[str, Any]:
    """The paused picture once it stops changing: on a loaded machine the frame on screen can
    lag the element's currentTime for a moment after a pause or a seek, and a read in that
    moment measures a step from a frame the player has already left."""
    value = picture(page)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.3)
        again = picture(page)
        if again["stamp"] == value["stamp"]:
            return again
        value = again
    raise AssertionError(f"the paused picture kept changing: {value}")


def first_picture(page: Page, timeout: float = 15) -> dict[str, Any]:
    """The first picture shown since the page opened or the last click (see FIRST_PICTURE_JS)."""
    page.wait_for_function("() => window.__pbFirst !== null", timeout=timeout * 1000)
    value: dict[str, Any] = page.evaluate("window.__pbFirst")
    return value


def ms_apart(stamp: int, wall: float) -> float:
    """Signed ms from ``wall`` (epoch s) to the picture's clock stamp (mod 2^40)."""
    diff = (stamp - round(wall * 1000)) % MODULUS
    return float(diff - MODULUS if diff > MODULUS / 2 else diff)


def iso_seconds(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def sign_in_admin(fw: FootageWorld, page: Page, path: str) -> None:
    sign_in(page, fw.url, fw.cw.tenant.email, fw.cw.tenant.password, path)


@pytest.mark.parametrize("method", ["proxy", "tunnel"])
def test_plays_the_moment_asked_for(fw: FootageWorld, reader_page: Page, method: str) -> None:
    """A manager (footage, no admin) of their own each time: the audit row is theirs."""
    page = reader_page
    email, password = fw.user("manager")
    fw.set_method(method)
    try:
        sign_in(page, fw.url, email, password, "/cameras")
        asked = round(time.time() - 20, 3)
        began = time.monotonic()
        page.goto(f"{fw.url}{FOOTAGE_PATH}?t={asked}")
        shown = first_picture(page)
        seek_s = time.monotonic() - began
        off = ms_apart(shown["stamp"], asked)
        print(f"\n{method}: first picture {off:+.0f} ms from the time asked, {seek_s:.2f} s")
        assert abs(off) <= 500, shown
        # Paused, #footage-clock names the picture on screen.
        page.click("[data-action=play]")
        wait_until(lambda: page.evaluate(f"document.querySelector('{VIDEO}').paused"), timeout=5)
        still = picture(page)
        assert still["paused"]
        clock_off = ms_apart(still["stamp"], iso_seconds(still["clock"]))
        assert abs(clock_off) <= 100, still
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", still["clock"]), still
    finally:
        fw.set_method("proxy")
    # The relay's audit trail names the user's footage view and the method it went by.
    rows = httpx.get(
        f"{fw.url}/api/audit",
        params={"action": "footage_view", "user": email},
        headers=fw.auth,
        timeout=10,
    )
    assert rows.status_code == 200, rows.text
    assert {e["method"] for e in rows.json()["events"]} == {method}, rows.json()


def test_a_click_on_the_bar_plays_that_time(fw: FootageWorld, reader_page: Page) -> None:
    page = reader_page
    sign_in_admin(fw, page, FOOTAGE_PATH)
    wait_until(
        lambda: page.locator(".timeline .span-recording").count() >= 1, timeout=10, what="spans"
    )
    assert page.locator(".timeline-status").inner_text().startswith("Recorded ")
    page.select_option("#footage-zoom", "120")  # 2 minutes around now
    wait_until(
        lambda: page.locator(".timeline .span-recording").count() >= 1, timeout=10, what="spans"
    )
    bar = page.locator("#footage-bar")
    box = bar.bounding_box()
    assert box is not None
    lo, hi = (float(bar.get_attribute(a) or "nan") for a in ("data-from", "data-to"))
    target = time.time() - 25
    x = (target - lo) / (hi - lo) * box["width"]
    bar.click(position={"x": x, "y": box["height"] / 2})
    asked = float(page.get_attribute(".footage", "data-requested") or "nan")
    assert abs(asked - target) < (hi - lo) / box["width"] * 2  # within two pixels
    shown = first_picture(page)
    assert abs(ms_apart(shown["stamp"], asked)) <= 500, (shown, asked)
    # The playhead is drawn where the picture is.
    wait_until(lambda: page.locator(".timeline-playhead").is_visible(), timeout=5)


def test_frame_steps_and_speeds(fw: FootageWorld, reader_page: Page) -> None:
    page = reader_page
    bodies: list[tuple[str, str | None, str | None]] = []
    page.on(
        "response",
        lambda r: (
            bodies.append(
                (
                    r.url.split("?")[1],
                    r.headers.get("x-platebridge-media-start"),
                    r.headers.get("x-platebridge-media-end"),
                )
            )
            if "/media?" in r.url
            else None
        ),
    )
    sign_in_admin(fw, page, "/cameras")
    page.goto(f"{fw.url}{FOOTAGE_PATH}?t={time.time() - 30:.3f}")
    picture(page)
    page.click("[data-action=play]")  # pause
    wait_until(lambda: picture(page)["paused"], timeout=5)
    before = settled_picture(page)
    page.click("[data-step='1']")
    wait_until(lambda: picture(page)["stamp"] != before["stamp"], timeout=10, what="step")
    after = settled_picture(page)
    step = ms_apart(after["stamp"], before["stamp"] / 1000)
    assert 20 <= step <= 60, (before, after)  # one frame at 25 fps
    clock_step = (iso_seconds(after["clock"]) - iso_seconds(before["clock"])) * 1000
    assert 20 <= clock_step <= 60, (before, after)
    page.click("[data-step='-1']")
    wait_until(lambda: picture(page)["stamp"] != after["stamp"], timeout=10, what="step back")
    assert settled_picture(page)["stamp"] == before["stamp"]
    # At 4x, the picture's clock runs four times as fast as ours.
    page.click("[data-rate='4']")
    page.click("[data-action=play]")
    start = picture(page)
    time.sleep(2)
    end = picture(page)
    assert end["rate"] == 4
    advanced = ms_apart(end["stamp"], start["stamp"] / 1000) / (end["at"] - start["at"])
    assert 3.0 <= advanced <= 4.5, (start, end)
    assert page.get_attribute("[data-rate='4']", "aria-pressed") == "true"
    # Chunk after chunk (8 s of footage went by): one buffered range, no gap said.
    ranges = page.evaluate(
        "(() => { const b = PlateBridgeFootage.player.sb.buffered; const o = [];"
        " for (let i = 0; i < b.length; i++) o.push([b.start(i), b.end(i)]); return o; })()"
    )
    assert len(ranges) == 1, (ranges, bodies)
    assert "Gap" not in page.locator(".footage-note").inner_text()


def test_without_media_source_the_vod_playlist_plays(fw: FootageWorld, reader_page: Page) -> None:
    """iOS before 17.1: no MediaSource; the browser's own HLS player on the VOD playlist."""
    page = reader_page
    page.add_init_script("delete window.MediaSource; delete window.ManagedMediaSource;")
    sign_in_admin(fw, page, "/cameras")
    asked = round(time.time() - 25, 3)
    with page.expect_request(lambda r: "/vod.m3u8?" in r.url, timeout=10000):
        page.goto(f"{fw.url}{FOOTAGE_PATH}?t={asked}")
    shown = first_picture(page)
    print(f"\nVOD fallback: first picture {ms_apart(shown['stamp'], asked):+.0f} ms")
    assert abs(ms_apart(shown["stamp"], asked)) <= 1000, shown
    page.click("[data-action=play]")
    wait_until(lambda: page.evaluate(f"document.querySelector('{VIDEO}').paused"), timeout=5)
    still = picture(page)
    assert abs(ms_apart(still["stamp"], iso_seconds(still["clock"]))) <= 150, still


def test_back_30_s_from_the_live_view(fw: FootageWorld, reader_page: Page) -> None:
    page = reader_page
    sign_in_admin(fw, page, "/cameras")
    assert page.locator(f".camera-card a[href='{FOOTAGE_PATH}']").count() == 1
    page.goto(f"{fw.url}{CAMERA_PATH}")
    assert page.locator(f"a[href='{FOOTAGE_PATH}']").count() >= 1  # the Footage link
    clicked = time.time()
    page.click("text=Back 30 s")
    page.wait_for_url(f"**{FOOTAGE_PATH}?back=30")
    shown = first_picture(page)
    assert abs(ms_apart(shown["stamp"], clicked - 30)) <= 1000, shown
    # Back to live is one click away.
    page.locator(".footage-controls a", has_text="Back to live").click()
    page.wait_for_url(f"{fw.url}{CAMERA_PATH}")


def test_says_the_truth_before_the_recording_and_in_the_future(
    fw: FootageWorld, reader_page: Page
) -> None:
    page = reader_page
    sign_in_admin(fw, page, "/cameras")
    before = fw.recorded_from - 600  # nothing recorded then: it plays from the first recording
    page.goto(f"{fw.url}{FOOTAGE_PATH}?t={before:.3f}")
    shown = first_picture(page)
    assert abs(ms_apart(shown["stamp"], fw.recorded_from)) <= 3000, shown
    note = page.locator(".footage-note")
    assert "playing from the next recording" in note.inner_text()
    page.fill(
        "#footage-goto-time",
        datetime.fromtimestamp(time.time() + 3600).strftime("%Y-%m-%dT%H:%M:%S"),
    )
    page.click("#footage-goto button[type=submit]")
    status = page.locator(".footage-player .player-status")
    assert "in the future" in status.inner_text()
    described = page.evaluate(
        "[PlateBridgePlayback.describe(503, {error: 'recording_off', detail: 'x'}),"
        " PlateBridgePlayback.describe(409, {error: 'pod_offline', detail: 'x'}),"
        " PlateBridgePlayback.describe(502, {error: 'upstream_error', detail: 'the POD failed'})]"
    )
    assert described[0].startswith("Recording off")
    assert described[1].startswith("The POD is offline")
    assert described[2] == "The POD failed (upstream_error)"


def test_clip_download_and_share_link_signed_out(
    fw: FootageWorld, reader_page: Page, browser: Browser, tmp_path: Path
) -> None:
    page = reader_page
    sign_in_admin(fw, page, FOOTAGE_PATH)
    start = time.time() - 30
    for field, at in (("#clip-start", start), ("#clip-end", start + 8)):
        page.fill(field, datetime.fromtimestamp(at).strftime("%Y-%m-%dT%H:%M:%S"))
    with page.expect_download(timeout=30000) as dl:
        page.click("#clip-download")
    saved = tmp_path / dl.value.suggested_filename
    dl.value.save_as(saved)
    assert saved.name.startswith(f"{CAMERA_ID}-") and saved.suffix == ".mp4"
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json", saved],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert abs(float(json.loads(probe.stdout)["format"]["duration"]) - 8) <= 1
    page.click("#clip-share")
    wait_until(
        lambda: (
            page.input_value("#share-url")
            or not page.inner_text(".clip-status").startswith("Creating")
        ),
        timeout=15,
        what="the share link or a message",
    )
    url = page.input_value("#share-url")
    assert url, page.inner_text(".clip-status")
    assert re.search(r"/s/[^/?#]+$", url), url
    # Signed out, in a fresh browser context: the clip plays.
    stranger = browser.new_context()
    try:
        tab = stranger.new_page()
        tab.add_init_script(path=str(READER))
        tab.goto(url)
        assert "/login" not in tab.url
        tab.evaluate(
            "(() => { const v = document.querySelector('video'); v.muted = true; "
            "return v.play(); })()"
        )
        wait_until(
            lambda: tab.evaluate(
                "(() => { const v = document.querySelector('video');"
                " return !!v && v.readyState >= 2 && v.currentTime > 0.5; })()"
            ),
            timeout=30,
            what="shared clip playing",
        )
        stamp = tab.evaluate("PlateBridgeClock.read(document.querySelector('video')).stamp")
        assert stamp is not None
        assert -2500 <= ms_apart(stamp, start) <= 9000, stamp  # inside the clip (a GOP early)
        assert "/login" not in tab.url
    finally:
        stranger.close()


def test_viewer_sees_no_footage(fw: FootageWorld, reader_page: Page) -> None:
    page = reader_page
    email, password = fw.user("viewer")
    sign_in(page, fw.url, email, password, "/cameras")
    assert page.locator(".camera-card").count() >= 1
    assert page.locator("a[href*='/footage']").count() == 0  # no link on the cards
    page.goto(f"{fw.url}{CAMERA_PATH}")
    assert page.locator("a[href*='/footage']").count() == 0  # nor on the live view
    response = page.goto(f"{fw.url}{FOOTAGE_PATH}")
    assert response is not None and response.status == 403
    assert "live video only" in page.locator("main").inner_text()
    assert page.locator("video").count() == 0
