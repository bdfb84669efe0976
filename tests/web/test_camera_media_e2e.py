"""What each camera sends, end to end (issue 12 §3): real GStreamer cameras (H.265; H.264 with
G.711 A-law audio), a real POD agent probing them and measuring its live output, its heartbeat,
the portal storing it, ``GET /api/cameras`` and the pages in headless Chromium (no HEVC).

- the API lists each camera's ``media`` (codec, profile, size, fps, keyframe interval, bitrate,
  audio handling, RFC 6381 codecs);
- the cameras page shows it per camera; the H.265 camera's badge is "unsupported codec" with
  the plain sentence, the H.264 camera's stays "live";
- the H.265 camera's live page says the same and opens no live socket at all; the H.264 page
  plays.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page

from tests.support import portal as support
from tests.support.agent import Agent
from tests.support.builders import pod_config
from tests.support.camera import PROFILES, TestCamera, camera_available
from tests.support.portal import SeededCompany, new_sqlite_url, portal_process
from tests.support.procs import wait_until
from tests.web.conftest import CHROMIUM, assert_plays, sign_in
from tests.web.worlds import off_loop, seed_company

SENTENCE = (
    "This camera sends H.265, which this browser cannot play. Use the camera's H.264 "
    "substream, or turn on transcoding (transcode: h264) for it."
)


@dataclass
class MediaWorld:
    url: str
    tenant: SeededCompany


def cameras(url: str, tenant: SeededCompany) -> dict[str, dict[str, Any]]:
    auth = support.login(url, tenant.email, tenant.password)
    items = httpx.get(f"{url}/api/cameras", headers=auth, timeout=5).json()["cameras"]
    return {c["id"]: c for c in items}


def measured(url: str, tenant: SeededCompany) -> bool:
    """Both cameras report their measured keyframe interval and bitrate."""
    cams = cameras(url, tenant)
    return len(cams) == 2 and all(
        (c.get("media") or {}).get("keyframe_interval")
        and (c.get("media") or {}).get("bitrate_kbps")
        for c in cams.values()
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MediaWorld]:
    if not camera_available() or not Path(CHROMIUM).exists():
        pytest.skip("needs GStreamer's RTSP server, ffmpeg and /usr/bin/chromium")
    tmp = tmp_path_factory.mktemp("media")
    db_url = new_sqlite_url(tmp)
    off_loop(support.migrate, db_url)
    tenant = seed_company(db_url, "Company A", pod_id="main-gate-pod")
    (tmp / "hevc").mkdir()
    (tmp / "g711").mkdir()
    hevc = TestCamera(tmp / "hevc", profile=PROFILES["h265"])
    g711 = TestCamera(tmp / "g711", profile=PROFILES["h264-g711a"])
    env = {"PLATEBRIDGE_POD_NETWORKS": "127.0.0.0/8"}
    with hevc, g711, portal_process(db_url, env, log_dir=tmp) as portal:
        agent_dir = tmp / f"agent-{uuid.uuid4().hex[:6]}"
        agent_dir.mkdir()
        config = pod_config(
            agent_dir,
            hevc.url,
            tenant=tenant,
            portal_url=portal.url,
            heartbeat_interval=2,
            cors_origins=[portal.url],
        )
        for key in ("camera_id", "camera_name", "camera_rtsp_url", "camera_position"):
            config.pop(key)
        config["cameras"] = [
            {"camera_id": "hevc-cam", "name": "H.265 camera", "rtsp_url": hevc.url},
            {"camera_id": "g711-cam", "name": "G.711 camera", "rtsp_url": g711.url},
        ]
        agent = Agent(agent_dir, config)
        try:
            agent.wait_all_active(timeout=60)
            wait_until(lambda: measured(portal.url, tenant), timeout=40, what="media measured")
            yield MediaWorld(portal.url, tenant)
        except BaseException:
            print(agent.output()[-3000:])
            raise
        finally:
            agent.close()


def test_the_api_lists_what_each_camera_sends(world: MediaWorld) -> None:
    cams = cameras(world.url, world.tenant)
    hevc, g711 = cams["hevc-cam"]["media"], cams["g711-cam"]["media"]
    print(f"\nH.265 camera: {hevc}\nG.711 camera: {g711}")
    assert hevc["video_codec"] == "hevc" and hevc["codecs"].startswith("hvc1.")
    assert (hevc["width"], hevc["height"]) == (640, 360) and hevc["fps"] == 25
    assert hevc["keyframe_interval"] == 2.0  # the profile's 2 s GOP, measured
    assert hevc["audio"] == "none" and hevc["transcoded"] is False
    assert g711["video_codec"] == "h264" and g711["codecs"].startswith("avc1.")
    assert g711["codecs"].endswith(",mp4a.40.2")  # G.711 converted to AAC-LC
    assert g711["audio_codec"] == "pcm_alaw" and g711["audio"] == "converted"
    assert g711["keyframe_interval"] == 2.0
    for media in (hevc, g711):
        assert 1 <= media["bitrate_kbps"] <= 5000, media
    assert cams["g711-cam"]["sub_media"] is None


def test_cameras_page_is_truthful_in_this_browser(world: MediaWorld, page: Page) -> None:
    sign_in(page, world.url, world.tenant.email, world.tenant.password)
    card = 'li.camera-card[data-camera="main-gate-pod/{}"]'
    hevc, g711 = card.format("hevc-cam"), card.format("g711-cam")
    assert page.text_content(f"{hevc} .badge") == "unsupported codec"
    assert page.text_content(f"{hevc} .codec-note") == SENTENCE
    assert page.is_visible(f"{hevc} .codec-note")
    assert (
        page.text_content(f"{hevc} .media-video") == "H.265 Main \u00b7 640\u00d7360 \u00b7 25 fps"
    )
    assert page.text_content(f"{hevc} .media-gop") == "every 2 s"
    assert page.text_content(f"{g711} .badge") == "live"
    assert not page.is_visible(f"{g711} .codec-note")
    assert (
        page.text_content(f"{g711} .media-audio") == "G.711 A-law \u2192 AAC (converted by the POD)"
    )
    assert page.get_attribute(g711, "data-codec-supported") == "true"


def test_h265_live_page_explains_without_a_socket(world: MediaWorld, page: Page) -> None:
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    sign_in(page, world.url, world.tenant.email, world.tenant.password)
    page.goto(f"{world.url}/cameras/main-gate-pod/hevc-cam")
    wait_until(
        lambda: page.get_attribute(".player", "data-state") == "unsupported",
        timeout=10,
        what="unsupported",
    )
    assert page.text_content(".player .player-status") == SENTENCE
    assert page.text_content(".camera-head .badge") == "unsupported codec"
    page.wait_for_timeout(2500)
    assert sockets == [] and page.get_attribute(".player", "data-state") == "unsupported"
    # The H.264 camera's page plays (and says it is live).
    page.goto(f"{world.url}/cameras/main-gate-pod/g711-cam")
    assert_plays(page, seconds=1.5)
    assert page.text_content(".camera-head .badge") == "live"
    assert len(sockets) == 1
