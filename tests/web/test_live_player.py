"""The MSE live player (``static/live.js``) in Chromium against a real fMP4 live source over a
real WebSocket (``tests/web/live_server.py``): it plays, stays near the live edge, says plainly
when the camera sends H.265, comes back by itself after an outage, follows a camera restart, and
never hands the token to an address that is not ours."""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.support.procs import wait_until
from tests.web.conftest import CHROMIUM, assert_plays
from tests.web.live_server import H265_CODECS, Clip, LiveSource, make_clip
from tests.web.worlds import state, wait_advancing


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Clip:
    if not Path(CHROMIUM).exists():
        pytest.skip("needs /usr/bin/chromium")
    return make_clip(tmp_path_factory.mktemp("live"))


@pytest.fixture
def source(clip: Clip) -> Iterator[LiveSource]:
    with LiveSource(clip) as src:
        yield src


def lag_behind_camera(page: Page, source: LiveSource) -> float:
    """The camera's clock minus the picture's: how far behind the live edge the viewer is."""
    before = source.timeline_now()
    t = float(page.evaluate("document.querySelector('.player video').currentTime"))
    return (before + source.timeline_now()) / 2 - t


def test_plays_near_the_live_edge_and_says_so(source: LiveSource, page: Page) -> None:
    page.goto(source.url)
    assert_plays(page, seconds=2.0)
    lags, delays = [], []
    for _ in range(24):  # 6 s while the source paces fragments in real time
        time.sleep(0.25)
        lags.append(lag_behind_camera(page, source))
        delays.append(state(page)["delay"])
    st = state(page)
    print(
        f"\nbehind the camera's clock: median {statistics.median(lags):.2f} s, max "
        f"{max(lags):.2f} s; buffered end - currentTime: median {statistics.median(delays):.2f} s"
    )
    assert max(lags) < 1.0, lags
    assert st["player"] == "mse" and st["state"] == "playing", st
    assert re.fullmatch(r"LIVE · \d+\.\d s · H\.264 High", st["label"]), st
    assert st["paused"] is False
    # The one socket carried the token the portal handed out.
    assert [s.get("token") for s in source.seen] == ["tok-1"]


def test_catches_up_after_falling_behind(source: LiveSource, page: Page) -> None:
    page.goto(source.url)
    assert_plays(page, seconds=1.0)
    # Pause 2 s (a busy tab): 2 s behind → faster playback until near the edge again.
    page.evaluate("document.querySelector('.player video').pause()")
    time.sleep(2)
    page.evaluate("document.querySelector('.player video').play()")
    wait_until(lambda: state(page)["rate"] > 1.05, timeout=5, what="catch-up rate")
    assert state(page)["rate"] <= 1.5
    wait_until(lambda: lag_behind_camera(page, source) < 0.8, timeout=15, what="caught up")
    wait_until(lambda: state(page)["rate"] == 1.0, timeout=10, what="rate 1.0 again")
    # 5 s behind is more than the jump threshold: it jumps instead of playing fast for long.
    page.evaluate("document.querySelector('.player video').pause()")
    time.sleep(5)
    page.evaluate("document.querySelector('.player video').play()")
    wait_until(lambda: lag_behind_camera(page, source) < 1.0, timeout=3, what="jumped to the edge")


def test_h265_is_explained_not_retried(source: LiveSource, page: Page) -> None:
    page.goto("about:blank")
    supported = page.evaluate(f"MediaSource.isTypeSupported('video/mp4; codecs=\"{H265_CODECS}\"')")
    assert supported is False, "this Chromium plays HEVC: the message cannot be tested here"
    source.codecs = H265_CODECS
    page.goto(source.url)
    wait_until(lambda: state(page)["state"] == "unsupported", timeout=10, what="unsupported")
    st = state(page)
    assert st["status"] == (
        "This camera sends H.265, which this browser cannot play. Use the camera's H.264 "
        "substream, or turn on transcoding (transcode: h264) for it."
    )
    time.sleep(3)  # three reconnect intervals
    assert len(source.seen) == 1, source.seen  # no reconnect loop
    assert state(page)["state"] == "unsupported"


def test_a_restart_into_h265_is_explained(source: LiveSource, page: Page) -> None:
    page.goto(source.url)
    assert_plays(page, seconds=1.0)
    source.codecs = H265_CODECS
    source.restart()  # the notice names the new codecs: the player checks them again
    wait_until(lambda: state(page)["state"] == "unsupported", timeout=10, what="unsupported")
    assert state(page)["status"].startswith("This camera sends H.265")
    time.sleep(2)
    assert len(source.seen) == 1


def test_open_page_plays_again_soon_after_the_stream_returns(
    source: LiveSource, page: Page
) -> None:
    page.goto(source.url)
    assert_plays(page, seconds=1.0)
    page.evaluate("window.__pbSamePage = true")
    source.down()
    wait_until(lambda: state(page)["state"] == "reconnecting", timeout=5, what="noticed")
    time.sleep(3)
    tries = len(source.seen)
    assert tries >= 3, source.seen  # it kept probing, about once a second
    source.up()
    back = time.monotonic()
    wait_advancing(page, timeout=10)
    recovered = time.monotonic() - back
    print(f"\nlive player playing again {recovered:.2f} s after the stream returned")
    assert recovered < 2.0, recovered
    assert page.evaluate("window.__pbSamePage === true")
    wait_until(lambda: lag_behind_camera(page, source) < 1.0, timeout=5, what="at the edge")
    assert_plays(page, seconds=1.0)


def test_a_silent_socket_is_replaced(source: LiveSource, page: Page) -> None:
    page.goto(source.url)
    assert_plays(page, seconds=1.0)
    source.frozen = True  # open, but nothing arrives: the watchdog must give up on it
    wait_until(lambda: len(source.seen) >= 2, timeout=30, what="a second socket")
    source.frozen = False
    assert_plays(page, seconds=1.0)


def test_camera_restart_resets_the_media_source(source: LiveSource, page: Page) -> None:
    page.goto(source.url)
    assert_plays(page, seconds=1.0)
    time.sleep(2)
    assert state(page)["t"] > 3
    source.restart()  # notice, a new init, a timeline from 0 again
    wait_until(lambda: 0 < state(page)["t"] < 2, timeout=5, what="new timeline")
    assert_plays(page, seconds=1.0)
    assert len(source.seen) == 1  # the same socket: no reconnect needed
    wait_until(lambda: lag_behind_camera(page, source) < 1.0, timeout=5, what="at the edge")


def test_token_never_goes_to_a_foreign_live_url(clip: Clip, page: Page) -> None:
    with LiveSource(clip, host="127.0.0.2") as foreign, LiveSource(clip) as source:
        source.live_url = f"ws://127.0.0.2:{foreign.port}/api/pod/live/pod-1?token={{token}}"
        page.goto(source.url)
        wait_until(lambda: state(page)["player"] == "hls", timeout=10, what="fallback")
        time.sleep(1.5)
        assert foreign.seen == [] and source.seen == []
        page.goto(source.url)  # the rule itself, for WebSocket URLs
        own = source.url.replace("http://", "ws://")
        decide = "([u, o]) => window.PlateBridgePlayer.tokenAllowed(u, o)"
        pod = f"http://127.0.0.2:{foreign.port}"
        cases = {
            f"{own}/api/pod/live/pod-1?camera_id=cam-1": (None, True),
            f"{own}/api/cameras": (None, False),
            f"ws://127.0.0.2:{foreign.port}/api/pod/live/pod-1": (None, False),
            f"ws://127.0.0.2:{foreign.port}/live/cam-1/ws": (pod, True),
            f"wss://127.0.0.2:{foreign.port}/live/cam-1/ws": (pod, False),
            f"ws://127.0.0.3:{foreign.port}/live/cam-1/ws": (pod, False),
        }
        for url, (origin, allowed) in cases.items():
            assert page.evaluate(decide, [url, origin]) is allowed, url


@pytest.mark.parametrize("error", ["not_found", "upstream_unavailable"])
def test_falls_back_to_hls_when_the_live_path_never_works(
    source: LiveSource, page: Page, error: str
) -> None:
    """A POD without the live endpoint (the portal says ``not_found``: HLS at once), or any
    live path that never delivers an init (three tries): the same page plays HLS instead."""
    source.refuse_with = error
    with page.expect_request(lambda r: "/proxy-stream/" in r.url, timeout=10000) as first:
        page.goto(source.url)
    assert state(page)["player"] == "hls"
    assert len(source.seen) == (1 if error == "not_found" else 3), source.seen
    assert "token=tok-" in first.value.url  # the HLS player's own token, to its own route


def test_without_media_source_the_hls_player_takes_over(source: LiveSource, page: Page) -> None:
    """iOS before 17.1: no MediaSource of either kind, so neither live.js nor hls.js can run;
    the HLS player plays natively (this Chromium has native HLS too: canPlayType 'maybe')."""
    page.add_init_script("delete window.MediaSource; delete window.ManagedMediaSource;")
    with page.expect_request(lambda r: "/proxy-stream/" in r.url, timeout=10000) as first:
        page.goto(source.url)
    assert "token=tok-" in first.value.url
    assert state(page)["player"] == "hls"
    assert first.value.resource_type == "media"  # native HLS (the video's src), not hls.js's XHR
    assert source.seen == []  # no live socket was opened


def test_managed_media_source_is_preferred(source: LiveSource, page: Page) -> None:
    """Safari 17+: ManagedMediaSource (here Chromium's MediaSource in its place, a superset of
    what the player uses) with remote playback disabled, as Safari requires."""
    page.add_init_script(
        "window.__pbManaged = 0;"
        "window.ManagedMediaSource = class extends MediaSource {"
        "  constructor() { super(); window.__pbManaged += 1; } };"
    )
    page.goto(source.url)
    assert_plays(page, seconds=1.0)
    assert page.evaluate("window.__pbManaged") == 1
    assert page.evaluate("document.querySelector('.player video').disableRemotePlayback") is True


def test_codec_labels(source: LiveSource, page: Page) -> None:
    page.goto(source.url)
    label = "(c) => window.PlateBridgeLive.codecLabel(c)"
    assert page.evaluate(label, "avc1.640028,mp4a.40.2") == "H.264 High, AAC"
    assert page.evaluate(label, "avc1.42E01E") == "H.264 Constrained Baseline"
    assert page.evaluate(label, "avc1.4d401f") == "H.264 Main"
    assert page.evaluate(label, "hvc1.1.6.L120.90") == "H.265 Main"
    assert page.evaluate(label, "hev1.2.4.L120.90") == "H.265 Main 10"
