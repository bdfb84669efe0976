"""A camera's status is only LIVE when THIS browser can play what it sends (issue 12 §3).

The portal's real partials (``_camera_card.html``, ``_grid_tile.html``, rendered with the
portal's own Jinja environment from listing-shaped rows) and the portal's real scripts
(``codecs.js``, ``player.js``, ``live-mse.js``, ``live.js``) in headless Chromium, served by the
paced fMP4 source of ``live_server.py`` (under the portal's security headers). Headless
Chromium has no HEVC: the negative case is real; the H.264 camera is the positive one.
Also the contracts for the grid: ``data-lazy`` tiles wait for ``PlateBridgeLive.attach``,
``detach`` stops everything, and ``data-stream`` reaches the stream-token request.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from platebridge.portal.pages.render import environment
from platebridge.portal.pages.views import with_badges
from tests.support.procs import wait_until
from tests.web.conftest import CHROMIUM, assert_plays
from tests.web.live_server import H265_CODECS, Clip, LiveSource, make_clip

H264 = {
    "video_codec": "h264",
    "video_profile": "High",
    "width": 320,
    "height": 180,
    "fps": 25.0,
    "keyframe_interval": 1.0,
    "bitrate_kbps": 410,
    "audio": "none",
    "codecs": "avc1.64000d",
}
HEVC = {
    "video_codec": "hevc",
    "video_profile": "Main",
    "width": 1920,
    "height": 1080,
    "fps": 25.0,
    "keyframe_interval": 4.0,
    "bitrate_kbps": 4100,
    "audio_codec": "pcm_alaw",
    "audio": "converted",
    "codecs": H265_CODECS,
}
SENTENCE = (
    "This camera sends H.265, which this browser cannot play. Use the camera's H.264 "
    "substream, or turn on transcoding (transcode: h264) for it."
)


def row(camera_id: str, media: dict[str, Any] | None, **extra: Any) -> dict[str, Any]:
    """A row as ``listing`` gives it to the pages (badge added by ``with_badges``)."""
    base = {
        "id": camera_id,
        "name": f"Camera {camera_id}",
        "pod_id": "pod-1",
        "pod_name": "Gate POD",
        "site": "HQ",
        "position": "",
        "status": "active",
        "pod_status": "online",
        "error": None,
        "last_heartbeat": None,
        "media": media,
    }
    return base | extra


def page_html(cards: list[dict[str, Any]], tiles: list[dict[str, Any]], lazy: bool) -> str:
    env = environment()
    card = env.get_template("_camera_card.html")
    tile = env.get_template("_grid_tile.html")
    cards_html = "".join(card.render(cam=c, user=None) for c in with_badges(cards))
    tiles_html = "".join(tile.render(cam=t, lazy_tiles=lazy) for t in with_badges(tiles))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>codecs</title>
<meta name="csrf-token" content="test"><link rel="icon" href="data:,"></head><body>
<ul class="cards">{cards_html}</ul>
<ul class="grid">{tiles_html}</ul>
<template id="later">{card.render(cam=with_badges([row("later", HEVC)])[0], user=None)}</template>
<script src="/static/codecs.js"></script>
<script src="/static/vendor/hls.min.js"></script>
<script src="/static/player.js"></script>
<script src="/static/live-mse.js"></script>
<script src="/static/live.js"></script>
</body></html>
"""


@dataclass
class CodecPage(LiveSource):
    """The live source, with a page of cards and tiles and the token requests' bodies."""

    html: str = ""
    bodies: list[dict[str, Any]] = field(default_factory=list)

    async def _page(self, request: Request) -> Response:
        return HTMLResponse(self.html)

    async def _token(self, request: Request) -> Response:
        self.bodies.append(json.loads(await request.body()))
        return await super()._token(request)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Clip:
    if not Path(CHROMIUM).exists():
        pytest.skip("needs /usr/bin/chromium")
    return make_clip(tmp_path_factory.mktemp("codecs"))


@pytest.fixture
def served(clip: Clip) -> Iterator[CodecPage]:
    with CodecPage(clip) as src:
        yield src


BADGES_JS = """
() => Array.from(document.querySelectorAll('.camera-card')).map(li => ({
  camera: li.dataset.camera, supported: li.dataset.codecSupported || null,
  badge: li.querySelector('.badge').textContent.trim(),
  note: li.querySelector('.codec-note').hidden ? '' : li.querySelector('.codec-note').textContent,
  video: (li.querySelector('.media-video') || {}).textContent || null,
}))
"""
TILES_JS = """
() => Array.from(document.querySelectorAll('.grid .player')).map(p => ({
  camera: p.dataset.camera, state: p.dataset.state || null, player: p.dataset.player || null,
  supported: p.dataset.codecSupported || null,
  status: p.querySelector('.player-status').hidden ? '' :
    p.querySelector('.player-status').textContent,
}))
"""


def test_h265_is_not_live_in_a_browser_without_hevc(served: CodecPage, page: Page) -> None:
    page.goto("about:blank")
    hevc = page.evaluate(f"MediaSource.isTypeSupported('video/mp4; codecs=\"{H265_CODECS}\"')")
    assert hevc is False, "this Chromium plays HEVC: the negative case cannot be tested here"
    served.html = page_html(
        [row("h264", H264), row("hevc", HEVC), row("old", None)],
        [row("t-h264", H264), row("t-hevc", HEVC)],
        lazy=False,
    )
    page.goto(served.url)
    cards = {c["camera"]: c for c in page.evaluate(BADGES_JS)}
    assert cards["pod-1/h264"]["badge"] == "live" and cards["pod-1/h264"]["supported"] == "true"
    assert cards["pod-1/h264"]["note"] == ""
    assert cards["pod-1/h264"]["video"] == "H.264 High · 320\u00d7180 · 25 fps"
    assert cards["pod-1/hevc"]["badge"] == "unsupported codec", cards
    assert cards["pod-1/hevc"]["supported"] == "false" and cards["pod-1/hevc"]["note"] == SENTENCE
    # A camera whose POD does not report media (an older POD) stays as the server says.
    assert cards["pod-1/old"]["badge"] == "live" and cards["pod-1/old"]["supported"] is None

    # The H.264 tile plays; the H.265 tile says why and never asks for a token or a socket.
    assert_plays(page, selector='.player[data-camera="t-h264"] video', seconds=1.0)
    time.sleep(2)
    tiles = {t["camera"]: t for t in page.evaluate(TILES_JS)}
    assert tiles["t-h264"]["state"] == "playing" and tiles["t-h264"]["player"] == "mse"
    assert tiles["t-hevc"] == {
        "camera": "t-hevc",
        "state": "unsupported",
        "player": None,
        "supported": "false",
        "status": SENTENCE,
    }
    assert [b["camera_id"] for b in served.bodies] == ["t-h264"]
    assert [s.get("camera_id") for s in served.seen] == ["cam-1"]  # the H.264 tile's one socket

    # Cards added later (the listing's next page) are checked by PlateBridgeCodecs.check.
    page.evaluate(
        "() => { const li = document.getElementById('later').content.firstElementChild"
        ".cloneNode(true); document.querySelector('.cards').appendChild(li);"
        " window.PlateBridgeCodecs.check(li); }"
    )
    later = {c["camera"]: c for c in page.evaluate(BADGES_JS)}["pod-1/later"]
    assert later["badge"] == "unsupported codec" and later["note"] == SENTENCE


def test_the_player_refuses_h265_with_the_same_sentence(served: CodecPage, page: Page) -> None:
    """A camera whose stored codecs said H.264 now sends H.265 (its init says so): the player's
    own check gives the same sentence, once, no reconnect loop."""
    served.codecs = H265_CODECS
    served.html = page_html([], [row("t-now-hevc", H264)], lazy=False)
    page.goto(served.url)
    wait_until(
        lambda: page.evaluate(TILES_JS)[0]["state"] == "unsupported", timeout=10, what="refused"
    )
    assert page.evaluate(TILES_JS)[0]["status"] == SENTENCE
    time.sleep(2.5)
    assert len(served.seen) == 1 and page.evaluate(TILES_JS)[0]["state"] == "unsupported"


def test_lazy_tiles_wait_for_attach_and_detach_stops_them(served: CodecPage, page: Page) -> None:
    sub = row("t-sub", H264, sub_media=H264)
    served.html = page_html([], [row("t-main", H264), sub], lazy=True)
    page.goto(served.url)
    time.sleep(1.5)
    assert served.bodies == [] and served.seen == []  # nothing starts by itself
    page.evaluate(
        "() => document.querySelectorAll('.grid .player')"
        ".forEach(el => window.PlateBridgeLive.attach(el))"
    )
    for camera in ("t-main", "t-sub"):
        assert_plays(page, selector=f'.player[data-camera="{camera}"] video', seconds=1.0)
    # data-stream goes into the token request only where the element has it.
    bodies = {b["camera_id"]: b for b in served.bodies}
    assert bodies["t-main"] == {"pod_id": "pod-1", "camera_id": "t-main"}
    assert bodies["t-sub"] == {"pod_id": "pod-1", "camera_id": "t-sub", "stream": "sub"}
    page.evaluate(
        "() => document.querySelectorAll('.grid .player')"
        ".forEach(el => window.PlateBridgeLive.detach(el))"
    )
    tokens, sockets = len(served.bodies), len(served.seen)
    states = {t["state"] for t in page.evaluate(TILES_JS)}
    assert states == {"idle"}
    assert page.evaluate("document.querySelector('.grid video').getAttribute('src')") is None
    time.sleep(3)  # no reconnect, no renewal, no watchdog behind them
    assert (len(served.bodies), len(served.seen)) == (tokens, sockets)
    assert {t["state"] for t in page.evaluate(TILES_JS)} == {"idle"}
    # And again: attach after detach plays.
    page.evaluate("window.PlateBridgeLive.attach(document.querySelector('.grid .player'))")
    assert_plays(page, selector='.player[data-camera="t-main"] video', seconds=1.0)
