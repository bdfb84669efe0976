"""Issue 12 section 4: a camera that goes away mid-view plays again in the open page within
2 s of returning, on the same page and in MSE, and the page says so in words while it is away.

Two ways a real gate camera goes away, one after the other on the same open page:

1. **A drop-out** (the camera keeps its RTSP port open but has no stream: every client is
   disconnected and DESCRIBE answers 404, ``TestCamera.toggle_dropout``) for ``DOWN_FOR`` s,
   longer than the portal bridges a restart on the open socket (10 s), so the player's own
   reconnect brings it back.
2. **A restart** (the camera process stops — connections refused — and starts again on the same
   port) for ``RESTART_DOWN`` s, which the portal bridges on the open socket.

Nothing in the test talks to the POD, the portal or the page: they find out by themselves.
"Back" is measured with the clock the camera burns into each picture (bench/clock_reader.js):
from the moment the camera answers again (the drop-out's end was signalled; the restarted
camera printed READY) to the page's first decoded frame captured after that moment, read from
the ``<video>`` every 40 ms.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

from tests.support.camera import PROFILES, TestCamera, camera_available
from tests.support.procs import REPO, wait_until
from tests.web.conftest import CHROMIUM, assert_plays, sign_in
from tests.web.worlds import CAMERA_PATH, CameraWorld, camera_world, state, wait_advancing

pytestmark = pytest.mark.e2e

DOWN_FOR = 12.0  # longer than the portal bridges a restart on the open socket (10 s)
RESTART_DOWN = 4.0  # the camera process away for this long: the portal bridges it
#: The issue's goal: plays again within 2 s of the camera returning.
BACK_WITHIN = 2.0
CAMERA = dataclasses.replace(PROFILES["h264-main-gop2"], clock=True)
READER = REPO / "bench" / "clock_reader.js"
SAMPLE_MS = 40

# The first picture read (wall-clock ms of the reading) captured at or after `since` (ms).
FIRST_NEW_JS = """
(since) => {
  const s = (window.__pbClock || {samples: []}).samples;
  const MOD = 2 ** 40;
  for (const x of s) {
    const age = ((x.stamp - since % MOD) % MOD + MOD) % MOD;
    if (age < MOD / 2) { return {readAt: performance.timeOrigin + x.at, stamp: x.stamp}; }
  }
  return null;
}
"""


@pytest.fixture(scope="module")
def dropout_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CameraWorld]:
    if not camera_available() or not Path(CHROMIUM).exists():
        pytest.skip("needs GStreamer's RTSP server, ffmpeg and /usr/bin/chromium")
    tmp = tmp_path_factory.mktemp("dropout")
    camera = TestCamera(tmp, profile=CAMERA)
    env = {"PLATEBRIDGE_POD_NETWORKS": "127.0.0.0/8"}
    with camera_world(tmp, camera, env) as world:
        yield world


def _camera_said(world: CameraWorld, line: str, count: int = 1) -> bool:
    assert world.camera.proc is not None
    return world.camera.proc.output().count(line) >= count


def _back_after(page: Page, since: float, timeout: float = 30.0) -> float:
    """Seconds from ``since`` (wall clock) to the page's first picture captured after it."""
    found: list[dict[str, Any]] = []

    def seen() -> bool:
        hit = page.evaluate(FIRST_NEW_JS, since * 1000)
        if hit is not None:
            found.append(hit)
        return hit is not None

    wait_until(seen, timeout=timeout, interval=0.1, what="a picture from after the return")
    return float(found[0]["readAt"]) / 1000 - since


def _watch_while(page: Page, away: Any, limit: float) -> list[tuple[float, str, str]]:
    """(s since the start, state, status) every 0.1 s while ``away()``."""
    start, seen = time.monotonic(), []
    while away():
        assert time.monotonic() - start < limit, "the camera never came back"
        st = state(page)
        seen.append((time.monotonic() - start, st["state"], st["status"]))
        time.sleep(0.1)
    return seen


def _assert_playing_mse(page: Page) -> None:
    assert page.evaluate("window.__pbSamePage === true")  # no reload
    wait_advancing(page, timeout=10)
    st = state(page)
    assert st["player"] == "mse" and st["state"] == "playing" and st["status"] == "", st
    assert_plays(page, seconds=1.0)


def test_open_page_through_a_drop_out_and_a_restart(dropout_world: CameraWorld, page: Page) -> None:
    world, camera = dropout_world, dropout_world.camera
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    page.add_init_script(path=str(READER))
    page.add_init_script(f"PlateBridgeClock.start({SAMPLE_MS}, '.player video')")
    sign_in(page, world.url, world.tenant.email, world.tenant.password, CAMERA_PATH)
    assert_plays(page, seconds=1.0)
    page.evaluate("window.__pbSamePage = true")
    _back_after(page, time.time() - 60, timeout=10)  # the camera's clock reads in the page

    # 1. The drop-out: the port stays open, the stream is gone (404) for DOWN_FOR s.
    camera.toggle_dropout()
    wait_until(lambda: _camera_said(world, "DROPOUT start"), timeout=5, what="the drop-out")
    ends = time.monotonic() + DOWN_FOR
    seen = _watch_while(page, lambda: time.monotonic() < ends, DOWN_FOR + 5)
    back = time.time()  # conservative: before the camera is told to end the drop-out
    camera.toggle_dropout()
    dropout_back = _back_after(page, back)
    said = [(t, s, text) for t, s, text in seen if s != "playing" and text]
    statuses = sorted({text for _, _, text in said})
    print(f"\ndrop-out {DOWN_FOR:.0f} s: the page said so {said[0][0] if said else None} s "
          f"after it began, {statuses}; a new picture {dropout_back:.2f} s after the camera "
          f"was back ({len(sockets)} sockets)")  # fmt: skip
    # While it is away the page says so in words (never a bare frozen LIVE picture all along).
    assert said, seen
    assert all(s in ("reconnecting", "offline", "connecting") for _, s, _ in said), said
    assert dropout_back < BACK_WITHIN, dropout_back
    _assert_playing_mse(page)

    # 2. The restart: the camera process goes (connections refused) and comes back.
    camera.stop()
    time.sleep(RESTART_DOWN)
    camera.start()
    back = time.time() - 0.05  # start() saw READY within its 50 ms poll
    restart_back = _back_after(page, back)
    print(f"restart ({RESTART_DOWN:.0f} s away): a new picture {restart_back:.2f} s after the "
          f"camera listened again ({len(sockets)} sockets)")  # fmt: skip
    assert restart_back < BACK_WITHIN, restart_back
    _assert_playing_mse(page)
    status = world.agent.camera_status()
    assert status["status"] == "active" and status["restarts"] >= 2, status  # the POD counted
    # The POD cut its back-off short (the camera answered again), it did not sleep it out.
    assert "the camera answers again, restarting ffmpeg now" in world.agent.output()
