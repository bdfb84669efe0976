"""The live page with cameras like real ones (tests/support/camera.py PROFILES), through the real
portal and POD agent, by proxy and through the tunnel: each H.264 profile (Main / High, keyframe
intervals of 1, 2, 4 and 10 s, G.711 A-law / µ-law and AAC audio, RTSP digest auth) plays with
MSE at once from the keyframe cache, near the live edge, with the codec on the label; audio
frames are decoded when the camera has audio (muted); H.265 is explained where Chromium cannot
decode it, never retried.

One world (portal, camera, agent with its tunnel always up) per profile; the portal's
``stream_mode`` picks proxy or tunnel. What carried the viewing is checked at both ends: the
portal's connections to the POD (proxy) or its tunnel streams and the portal's (tunnel)."""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.support.camera import PROFILES, CameraProfile, TestCamera, camera_available
from tests.support.procs import wait_until
from tests.tunnel.support import TUNNEL_ENV, portal_stats, wait_tunnel
from tests.web.conftest import CHROMIUM, assert_plays, sign_in
from tests.web.worlds import CAMERA_PATH, CameraWorld, camera_world, connections_to, state


@dataclass(frozen=True)
class Case:
    profile: CameraProfile
    #: the label's codec part; None: H.265, which this Chromium cannot decode
    label: str | None
    digest: bool = False


CAMERAS = {
    "h264-main-gop2": Case(PROFILES["h264-main-gop2"], "H.264 Main"),
    "h264-high-gop1": Case(PROFILES["h264-high-gop1"], "H.264 High"),
    "h264-high-gop4-g711a": Case(
        dataclasses.replace(PROFILES["h264-high-gop4"], audio="pcma"), "H.264 High, AAC"
    ),
    "h264-high-gop10": Case(PROFILES["h264-high-gop10"], "H.264 High"),
    "h264-g711u": Case(PROFILES["h264-g711u"], "H.264 Main, AAC"),
    "h264-aac": Case(PROFILES["h264-aac"], "H.264 Main, AAC"),
    "digest": Case(PROFILES["digest"], "H.264 Main", digest=True),
    "h265": Case(PROFILES["h265"], None),
}


@dataclass
class CodecWorld:
    name: str
    case: Case
    world: CameraWorld

    @property
    def pod_port(self) -> int:
        return int(self.world.agent_config["listen_port"])

    def proxied(self) -> int:
        """The portal's connections to the POD (its proxy upstreams)."""
        return connections_to(self.pod_port, self.world.portal.pid)

    def tunnel_streams(self) -> int:
        return int(self.world.agent.health()["tunnel"]["streams"])


@pytest.fixture(scope="module", params=list(CAMERAS))
def codec_world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CodecWorld]:
    if not camera_available() or not Path(CHROMIUM).exists():
        pytest.skip("needs GStreamer's RTSP server, ffmpeg and /usr/bin/chromium")
    name: str = request.param
    case = CAMERAS[name]
    tmp = tmp_path_factory.mktemp(f"codec-{name}")
    user, password = ("admin", "gate-secret-7") if case.digest else (None, None)
    camera = TestCamera(tmp, profile=case.profile, user=user, password=password)
    env = TUNNEL_ENV | {"PLATEBRIDGE_POD_NETWORKS": "127.0.0.0/8"}
    with camera_world(tmp, camera, env, tunnel=True, active_timeout=60) as world:
        wait_tunnel(world.url, world.portal.login(world.tenant.email, world.tenant.password),
                    world.tenant.pod_id, timeout=40)  # fmt: skip
        yield CodecWorld(name, case, world)


def _nothing_open(cw: CodecWorld) -> bool:
    """No live upstream of an earlier viewing left (it lingers 5 s after its last viewer)."""
    return cw.proxied() == 0 and cw.tunnel_streams() == 0


@pytest.mark.parametrize("method", ["proxy", "tunnel"])
def test_live_page_with_a_real_camera_profile(
    codec_world: CodecWorld, page: Page, method: str
) -> None:
    cw, world = codec_world, codec_world.world
    world.set_mode(method)
    wait_until(lambda: _nothing_open(cw), timeout=30, what="no live upstream left open")
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    sign_in(page, world.url, world.tenant.email, world.tenant.password)
    opened = time.monotonic()
    page.goto(f"{world.url}{CAMERA_PATH}")
    if cw.case.label is None:  # H.265
        hevc = "MediaSource.isTypeSupported('video/mp4; codecs=\"hvc1.1.6.L93.B0\"')"
        assert page.evaluate(hevc) is False, "this Chromium decodes HEVC"
        wait_until(lambda: state(page)["state"] == "unsupported", timeout=20, what="message")
        assert state(page)["status"].startswith(
            "This camera sends H.265, which this browser cannot play. Use the camera's H.264"
        )
        time.sleep(3)
        # The portal knows the camera's codecs from its heartbeat (media.codecs): codecs.js
        # marks the player and it is never started (no socket). Without them (not reported
        # yet) the player asks once, is told by the init message, and stops.
        known = page.get_attribute(".player", "data-codec-supported") == "false"
        assert len(sockets) == (0 if known else 1), sockets
        assert state(page)["state"] == "unsupported"
        return
    wait_until(lambda: state(page)["t"] > 0, timeout=20, what="first frame")
    first = time.monotonic() - opened
    assert_plays(page, seconds=2.0)
    wait_until(lambda: state(page)["delay"] < 1.0, timeout=15, what="near the edge")
    st = state(page)
    print(
        f"\n[{cw.name}, {method}] page → first frame {first:.2f} s "
        f"({cw.case.profile.gop_s:g} s keyframe interval), then {st['delay']:.2f} s behind the "
        f"buffered end; label {st['label']!r}"
    )
    assert st["player"] == "mse" and st["state"] == "playing" and st["muted"] is True, st
    assert re.fullmatch(rf"LIVE · \d+\.\d s · {re.escape(cw.case.label)}", st["label"]), st
    own = world.url.replace("http://", "ws://")
    assert sockets and all(u.startswith(f"{own}/api/pod/live/") for u in sockets), sockets
    # What carried it: the POD's own view of its upstreams, and the portal's tunnel count.
    if method == "proxy":
        assert cw.proxied() >= 1 and cw.tunnel_streams() == 0
    else:
        assert cw.proxied() == 0 and cw.tunnel_streams() >= 1
        assert portal_stats(world.url)["streams"] >= 1
    if cw.case.profile.audio != "none":
        wait_until(lambda: state(page)["audioBytes"] > 0, timeout=10, what="audio decoded")
    else:
        assert state(page)["audioBytes"] == 0
    status = world.agent.camera_status()
    assert status["status"] == "active" and status["error"] is None, status
