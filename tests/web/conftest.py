"""Browser tests: a real portal, a real POD agent with a real RTSP test camera, and Debian's
Chromium driven by Playwright (headless). One world per module keeps the 2-core budget small."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.support.agent import Agent
from tests.support.camera import TestCamera, camera_available
from tests.support.portal import SeededCompany
from tests.web.worlds import age_pods as age_pods
from tests.web.worlds import camera_world
from tests.web.worlds import off_loop as off_loop
from tests.web.worlds import pod_config as pod_config
from tests.web.worlds import seed_company as seed_company
from tests.web.worlds import wait_registered as wait_registered

# e2e: every test here is marked by the root conftest (tests/web is an e2e directory).


def find_chromium() -> str:
    """``PLATEBRIDGE_CHROMIUM``, else Debian's ``/usr/bin/chromium``, else the Chromium that
    ``playwright install chromium`` put in its cache (Ubuntu 24.04 has no apt Chromium, only a
    snap wrapper: scripts/setup.sh installs Playwright's build there)."""
    explicit = os.environ.get("PLATEBRIDGE_CHROMIUM")
    if explicit:
        return explicit
    if Path("/usr/bin/chromium").exists():
        return "/usr/bin/chromium"
    cache = Path(
        os.environ.get("PLAYWRIGHT_BROWSERS_PATH", Path.home() / ".cache" / "ms-playwright")
    )
    builds = sorted(cache.glob("chromium-*/chrome-linux*/chrome"))
    return str(builds[-1]) if builds else "/usr/bin/chromium"


CHROMIUM = find_chromium()
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
#: Short stream tokens: every playback test also exercises renewal.
TOKEN_TTL = 4


@dataclass
class World:
    url: str
    db_url: str
    tmp: Path
    camera: TestCamera
    a: SeededCompany
    b: SeededCompany
    agent: Agent


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """Company A's pod with the small 1 s-GOP camera (proxy mode), and Company B with a pod of
    its own (``other-pod``, no agent)."""
    if not camera_available() or not Path(CHROMIUM).exists():
        pytest.skip("needs GStreamer's RTSP server, ffmpeg and /usr/bin/chromium")
    tmp = tmp_path_factory.mktemp("web")
    env = {
        "PLATEBRIDGE_POD_NETWORKS": "127.0.0.0/8",
        "PLATEBRIDGE_STREAM_TOKEN_TTL": str(TOKEN_TTL),
        "PLATEBRIDGE_UPSTREAM_TOKEN_TTL": "6",
    }
    companies = (("Company A", "main-gate-pod"), ("Company B", "other-pod"))
    camera = TestCamera(tmp, pattern="ball")
    with camera_world(tmp, camera, env, companies=companies, active_timeout=30) as w:
        a, b = w.companies
        yield World(w.url, w.db_url, tmp, camera, a, b, w.agent)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Module-scoped: Playwright's sync API runs an event loop in this thread while it is open,
    which must be closed before any later module's asyncio tests run."""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    """A tab that records CSP violations and page errors; the test fails if any occurred."""
    tab = context.new_page()
    problems: list[str] = []
    tab.on(
        "console",
        lambda msg: problems.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    tab.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    yield tab
    assert problems == [], problems


def sign_in(page: Page, base: str, email: str, password: str, path: str = "/cameras") -> None:
    page.goto(f"{base}{path}")
    page.wait_for_url("**/login**")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}{path}")


# Evaluated in the page: wait until the video advances, then measure a decoded frame.
PLAYBACK_JS = """
async ({selector, seconds}) => {
  const video = document.querySelector(selector);
  const deadline = Date.now() + 45000;
  while (!(video.readyState >= 2 && video.currentTime > 0) && Date.now() < deadline) {
    await new Promise(r => setTimeout(r, 200));
  }
  const t0 = video.currentTime;
  await new Promise(r => setTimeout(r, seconds * 1000));
  const t1 = video.currentTime;
  const canvas = document.createElement('canvas');
  canvas.width = 160; canvas.height = 90;
  const ctx = canvas.getContext('2d');
  ctx.drawImage(video, 0, 0, canvas.width, canvas.height);
  const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  let sum = 0, sq = 0, n = 0;
  for (let i = 0; i < data.length; i += 4) {
    const y = 0.299 * data[i] + 0.587 * data[i + 1] + 0.114 * data[i + 2];
    sum += y; sq += y * y; n += 1;
  }
  const mean = sum / n;
  return {t0, t1, variance: sq / n - mean * mean, width: video.videoWidth,
          state: video.closest('.player').dataset.state};
}
"""


def assert_plays(page: Page, selector: str = ".player video", seconds: float = 3.0) -> Any:
    result = page.evaluate(PLAYBACK_JS, {"selector": selector, "seconds": seconds})
    assert result["t0"] > 0, f"video never started: {result}"
    assert result["t1"] > result["t0"] + seconds / 3, f"video did not advance: {result}"
    assert result["width"] > 0
    assert result["variance"] > 50, f"decoded frame looks blank: {result}"
    return result


def screenshot_dir() -> Path | None:
    """Set ``PLATEBRIDGE_SCREENSHOTS=docs/screenshots`` to (re)take the README screenshots."""
    target = os.environ.get("PLATEBRIDGE_SCREENSHOTS")
    if not target:
        return None
    path = Path(target)
    path.mkdir(parents=True, exist_ok=True)
    return path
