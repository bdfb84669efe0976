"""The live page with cameras like real ones (tests/support/camera.py PROFILES), through the real
portal (proxy) and POD agent: H.265 is explained where Chromium cannot decode it, never retried;
H.264 High with a 4 s keyframe interval and G.711 audio (converted to AAC by the POD) plays at
once from the keyframe cache, near the live edge, muted, with its audio decoded."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.support import portal as support
from tests.support.agent import Agent
from tests.support.camera import PROFILES, CameraProfile, TestCamera, camera_available
from tests.support.portal import SeededCompany, new_sqlite_url, run_portal
from tests.support.procs import wait_until
from tests.web.conftest import (
    CHROMIUM,
    assert_plays,
    off_loop,
    pod_config,
    seed_company,
    sign_in,
    wait_registered,
)

CAMERA_PATH = "/cameras/main-gate-pod/gate-camera-1"
CAMERAS = {
    "h265": PROFILES["h265"],
    "h264-high-gop4-g711a": CameraProfile(h264_profile="high", gop_s=4.0, audio="pcma"),
}
STATE_JS = """
() => {
  const root = document.querySelector('.player');
  const v = root.querySelector('video');
  const label = root.querySelector('.player-label');
  return {t: v.currentTime, state: root.dataset.state, player: root.dataset.player,
          delay: parseFloat(root.dataset.delay || 'NaN'), muted: v.muted,
          audioBytes: v.webkitAudioDecodedByteCount || 0,
          status: root.querySelector('.player-status').textContent,
          label: label.hidden ? '' : label.textContent};
}
"""


@dataclass
class CodecWorld:
    name: str
    url: str
    a: SeededCompany


@pytest.fixture(scope="module", params=sorted(CAMERAS))
def codec_world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CodecWorld]:
    if not camera_available() or not Path(CHROMIUM).exists():
        pytest.skip("needs GStreamer's RTSP server, ffmpeg and /usr/bin/chromium")
    name: str = request.param
    tmp = tmp_path_factory.mktemp(f"codec-{name}")
    db_url = new_sqlite_url(tmp)
    off_loop(support.migrate, db_url)
    a = seed_company(db_url, "Company A")
    env = {"PLATEBRIDGE_POD_NETWORKS": "127.0.0.0/8"}
    with (
        TestCamera(tmp, profile=CAMERAS[name]) as camera,
        run_portal(db_url, env, log_dir=tmp) as url,
    ):
        agent_dir = tmp / "agent"
        agent_dir.mkdir()
        agent = Agent(agent_dir, pod_config(agent_dir, a, url, camera.url))
        try:
            agent.wait_status("active")
            wait_registered(url, a)
            yield CodecWorld(name, url, a)
        finally:
            agent.close()


def test_live_page_with_a_real_camera_profile(codec_world: CodecWorld, page: Page) -> None:
    world = codec_world
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    sign_in(page, world.url, world.a.email, world.a.password)
    opened = time.monotonic()
    page.goto(f"{world.url}{CAMERA_PATH}")
    if world.name == "h265":
        hevc = "MediaSource.isTypeSupported('video/mp4; codecs=\"hvc1.1.6.L93.B0\"')"
        assert page.evaluate(hevc) is False, "this Chromium decodes HEVC"
        wait_until(
            lambda: page.evaluate(STATE_JS)["state"] == "unsupported", timeout=20, what="message"
        )
        assert page.evaluate(STATE_JS)["status"].startswith(
            "This camera sends H.265, which this browser cannot play. Use the camera's H.264"
        )
        time.sleep(3)
        assert len(sockets) == 1, sockets  # asked once, told, stopped
        assert page.evaluate(STATE_JS)["state"] == "unsupported"
        return
    wait_until(lambda: page.evaluate(STATE_JS)["t"] > 0, timeout=20, what="first frame")
    first = time.monotonic() - opened
    assert_plays(page, seconds=2.0)
    wait_until(lambda: page.evaluate(STATE_JS)["delay"] < 1.0, timeout=15, what="near the edge")
    state = page.evaluate(STATE_JS)
    print(
        f"\n[{world.name}] page → first frame {first:.2f} s (4 s keyframe interval), "
        f"then {state['delay']:.2f} s behind the buffered end; label {state['label']!r}"
    )
    assert state["player"] == "mse" and state["muted"] is True, state
    assert re.fullmatch(r"LIVE · \d+\.\d s · H\.264 High, AAC", state["label"]), state
    wait_until(lambda: page.evaluate(STATE_JS)["audioBytes"] > 0, timeout=10, what="audio")
