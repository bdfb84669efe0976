"""Issue 12 section 4: a camera that drops out mid-view (a real gate camera's 30 s drop-out,
shortened to ``DOWN_FOR`` s) — the open live page says so in plain words while it is down and
plays again, on the same page and in MSE, soon after the camera is back.

The camera is the GStreamer test camera with its own drop-out schedule
(``TestCamera(dropout=(every, for))``): every ``EVERY`` s it disconnects every client and answers
DESCRIBE with 404 for ``DOWN_FOR`` s, printing ``DROPOUT start`` / ``DROPOUT end``. Nothing in the
test stops or starts a process: the POD agent, the portal and the page find out by themselves.
"Back" is measured from the camera's own ``DROPOUT end`` to the page's video advancing again
(printed; the bound asserted is a loose one, the precise figure belongs in bench/)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.support.camera import PROFILES, TestCamera, camera_available
from tests.support.procs import wait_until
from tests.web.conftest import CHROMIUM, assert_plays, sign_in
from tests.web.worlds import CAMERA_PATH, CameraWorld, camera_world, state, wait_advancing

EVERY = 40.0  # the first drop-out starts this long after the camera (the page plays by then)
DOWN_FOR = 12.0  # longer than the portal bridges a restart on the open socket (10 s)
#: Loose: the POD retries a lost camera with a growing back-off (1, 2, 4, 8 s …), which is most
#: of the time back; the issue's goal is 2 s (the figure is printed; bench/ is for timing).
BACK_WITHIN = 20.0
CAMERA = dataclasses.replace(PROFILES["h264-main-gop2"], width=320, height=240, bitrate_kbps=300)


@pytest.fixture(scope="module")
def dropout_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CameraWorld]:
    if not camera_available() or not Path(CHROMIUM).exists():
        pytest.skip("needs GStreamer's RTSP server, ffmpeg and /usr/bin/chromium")
    tmp = tmp_path_factory.mktemp("dropout")
    camera = TestCamera(tmp, profile=CAMERA, dropout=(EVERY, DOWN_FOR))
    env = {"PLATEBRIDGE_POD_NETWORKS": "127.0.0.0/8"}
    with camera_world(tmp, camera, env) as world:
        yield world


def _camera_said(world: CameraWorld, line: str, count: int = 1) -> bool:
    assert world.camera.proc is not None
    return world.camera.proc.output().count(line) >= count


def test_open_page_through_a_camera_drop_out(dropout_world: CameraWorld, page: Page) -> None:
    world = dropout_world
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    sign_in(page, world.url, world.tenant.email, world.tenant.password, CAMERA_PATH)
    assert_plays(page, seconds=1.0)
    assert not _camera_said(world, "DROPOUT start"), "the drop-out came before the page played"
    page.evaluate("window.__pbSamePage = true")

    wait_until(lambda: _camera_said(world, "DROPOUT start"), timeout=EVERY + 5, interval=0.05,
               what="the camera's drop-out")  # fmt: skip
    down = time.monotonic()
    seen: list[tuple[float, str, str]] = []  # (s after the drop-out began, state, status)
    while not _camera_said(world, "DROPOUT end"):
        assert time.monotonic() - down < DOWN_FOR + 10, "the drop-out never ended"
        st = state(page)
        seen.append((time.monotonic() - down, st["state"], st["status"]))
        time.sleep(0.1)
    back = time.monotonic()
    wait_advancing(page, timeout=60)
    recovered = time.monotonic() - back

    said = [(t, s, text) for t, s, text in seen if s != "playing" and text]
    first_said = said[0][0] if said else None
    statuses = sorted({text for _, _, text in said})
    print(
        f"\ncamera down {back - down:.1f} s: the page said so {first_said} s after it went, "
        f"{statuses}; playing again {recovered:.2f} s after the camera was back "
        f"({len(sockets)} sockets)"
    )
    # While it is down the page says so in words (never a bare frozen LIVE picture all along).
    assert said, seen
    assert all(s in ("reconnecting", "offline", "connecting") for _, s, _ in said), said
    # Back by itself, on the same page, with MSE.
    assert recovered < BACK_WITHIN, recovered
    assert page.evaluate("window.__pbSamePage === true")
    st = state(page)
    assert st["player"] == "mse" and st["state"] == "playing" and st["status"] == "", st
    assert_plays(page, seconds=1.0)
    camera = world.agent.camera_status()
    assert camera["status"] == "active" and camera["restarts"] >= 1, camera  # the POD counted it
