"""Live fMP4 from a real camera through the real agent: GET /live and its WebSocket, the
keyframe cache for a late joiner, HLS at the same time from the same single RTSP session, and
a 10 s keyframe interval that the stall watchdog leaves alone."""

from __future__ import annotations

import dataclasses
import itertools
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from platebridge.core.fmp4 import Fragment, InitSegment, Splitter
from tests.support.agent import Agent
from tests.support.builders import CAMERA_ID, pod_config, stream_token
from tests.support.camera import PROFILES, TestCamera, camera_available
from tests.support.procs import pids_with, wait_until

pytestmark = pytest.mark.e2e

#: Small pictures: two cores are shared by many tests.
SMALL = {"width": 320, "height": 240, "fps": 15, "bitrate_kbps": 300}


def camera(tmp: Path, name: str, **changes: Any) -> TestCamera:
    if not camera_available():
        pytest.fail("needs /usr/bin/python3 with GStreamer RTSP server and ffmpeg")
    profile = dataclasses.replace(PROFILES[name], **SMALL, **changes)
    return TestCamera(tmp, profile=profile)


@pytest.fixture(scope="module")
def cam(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestCamera]:
    # H.264 High, 2 s keyframe interval, G.711 A-law audio (the POD converts it to AAC)
    with camera(tmp_path_factory.mktemp("camera"), "h264-g711a", h264_profile="high") as c:
        yield c


@pytest.fixture(scope="module")
def agent(cam: TestCamera, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Agent]:
    tmp = tmp_path_factory.mktemp("agent")
    agent = Agent(tmp, pod_config(tmp, cam.url))
    try:
        agent.wait_status("active", timeout=60)
        yield agent
    finally:
        agent.close()


class LiveReader:
    """Reads GET /live in a thread: (arrival time, item) for the init segment and fragments."""

    def __init__(self, agent: Agent, token: str | None = None) -> None:
        self.url = f"{agent.base}/live/{CAMERA_ID}"
        self.token = token or stream_token()
        self.items: list[tuple[float, InitSegment | Fragment]] = []
        self.headers: dict[str, str] = {}
        self.opened = self.first_bytes = 0.0
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> LiveReader:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)

    def _run(self) -> None:
        splitter = Splitter()
        try:
            self.opened = time.monotonic()
            with httpx.stream("GET", self.url, params={"token": self.token}, timeout=10) as r:
                assert r.status_code == 200, r.read()
                self.headers = dict(r.headers)
                for chunk in r.iter_raw():
                    if not self.first_bytes:
                        self.first_bytes = time.monotonic()
                    now = time.monotonic()
                    self.items.extend((now, item) for item in splitter.feed(chunk))
                    if self.stop.is_set():
                        return
        except BaseException as exc:  # reported by the test
            self.error = exc

    @property
    def fragments(self) -> list[tuple[float, Fragment]]:
        return [(t, f) for t, f in self.items if isinstance(f, Fragment)]

    def wait(self, count: int, what: str) -> list[tuple[float, Fragment]]:
        def enough() -> bool:
            assert self.error is None, repr(self.error)
            return len(self.fragments) >= count

        wait_until(enough, timeout=30, what=what)
        return self.fragments


def test_live_body_is_init_then_keyframe_led_fragments(agent: Agent) -> None:
    with LiveReader(agent) as reader:
        frags = reader.wait(20, "20 live fragments")
    assert reader.headers["content-type"] == "video/mp4"
    assert reader.headers["cache-control"] == "no-store"
    codecs = reader.headers["x-live-codecs"]
    assert codecs.startswith("avc1.64") and codecs.endswith(",mp4a.40.2"), codecs  # High + AAC
    first = reader.items[0][1]
    assert isinstance(first, InitSegment) and first.data[4:8] == b"ftyp"
    assert frags[0][1].keyframe  # a viewer's first picture is decodable
    assert not all(f.keyframe for _, f in frags)  # one fragment per frame, not per GOP


def test_late_joiner_gets_the_keyframe_cache_at_once(agent: Agent) -> None:
    with LiveReader(agent) as first:
        # wait until the first viewer is in the middle of a GOP (a keyframe, then deltas)
        def mid_gop() -> bool:
            frags = first.wait(1, "first viewer's fragments")
            keys = [i for i, (_, f) in enumerate(frags) if f.keyframe]
            return bool(keys) and len(frags) - keys[-1] >= 5

        wait_until(mid_gop, timeout=30, what="first viewer mid-GOP")
        with LiveReader(agent) as late:
            late.wait(3, "late joiner's fragments")
            joined = late.opened
        seen_before = [f.data for t, f in first.fragments if f.keyframe and t < joined]
    late_first = late.fragments[0][1]
    assert late_first.keyframe
    # the cache: the late joiner starts at a keyframe the first viewer had already received
    assert late_first.data in seen_before
    ttfb = (late.first_bytes - late.opened) * 1000
    print(f"\nlate joiner: first bytes {ttfb:.0f} ms after the request (keyframe cache)")


def test_websocket_sends_init_message_then_binary(agent: Agent) -> None:
    url = f"ws://127.0.0.1:{agent.config['listen_port']}/live/{CAMERA_ID}/ws"
    with connect(f"{url}?token={stream_token()}", open_timeout=10) as ws:
        hello = json.loads(ws.recv(timeout=10))
        init = ws.recv(timeout=10)
        fragments = [ws.recv(timeout=10) for _ in range(5)]
    assert hello["type"] == "init" and hello["camera_id"] == CAMERA_ID
    assert hello["mime"] == f'video/mp4; codecs="{hello["codecs"]}"'
    splitter = Splitter()
    assert isinstance(init, bytes) and splitter.feed(init) == [InitSegment(init)]
    items = [item for data in fragments for item in splitter.feed(data)]
    assert len(items) == 5 and all(isinstance(i, Fragment) for i in items)
    assert isinstance(items[0], Fragment) and items[0].keyframe


@pytest.mark.parametrize(
    ("token", "status"),
    [(None, 401), (stream_token(exp_in=-1), 401), (stream_token("other-camera"), 403)],
)
def test_websocket_refused_before_upgrade(agent: Agent, token: str | None, status: int) -> None:
    url = f"ws://127.0.0.1:{agent.config['listen_port']}/live/{CAMERA_ID}/ws"
    with pytest.raises(InvalidStatus) as info:
        connect(url + (f"?token={token}" if token else ""), open_timeout=10)
    response = info.value.response
    assert response.status_code == status
    assert json.loads(response.body)["error"].startswith(("token_", "wrong_camera"))


def rtsp_sessions(port: int) -> int:
    """Established TCP connections *to* the camera's port (RTSP over TCP: one per session)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            count += remote_port == port and fields[3] == "01"
    return count


def test_hls_and_live_at_once_from_one_rtsp_session(agent: Agent, cam: TestCamera) -> None:
    with LiveReader(agent) as reader:
        reader.wait(10, "live fragments")
        playlist = agent.get("/stream", token=stream_token())
        assert playlist.status_code == 200 and "seg_" in playlist.text
        segment = next(ln for ln in playlist.text.splitlines() if ln.startswith("stream/"))
        seg = httpx.get(f"{agent.base}/{segment}", timeout=10)
        assert seg.status_code == 200 and seg.content[:1] == b"\x47"
        ffmpegs = [p for p in pids_with(agent.hls_dir) if p != agent.pid]
        assert len(ffmpegs) == 1  # one ffmpeg writes both outputs
        assert rtsp_sessions(cam.port) == 1  # ... from one RTSP session
    assert agent.camera_status()["note"] == "audio pcm_alaw converted to AAC"
    assert agent.camera_status()["live_codecs"] == reader.headers["x-live-codecs"]


def test_ten_second_gop_is_not_restarted(tmp_path: Path) -> None:
    """The old watchdog restarted such a camera every ~14 s ("no new segment for 4 s")."""
    with camera(tmp_path, "h264-high-gop10") as long_gop:
        agent = Agent(tmp_path, pod_config(tmp_path, long_gop.url))
        try:
            agent.wait_status("active", timeout=60)
            ffmpeg = [p for p in pids_with(agent.hls_dir) if p != agent.pid]
            with LiveReader(agent) as reader:
                reader.wait(1, "a live fragment")
                deadline = time.monotonic() + 32  # three keyframe intervals and more
                while time.monotonic() < deadline:
                    assert agent.camera_status()["status"] == "active"
                    assert [p for p in pids_with(agent.hls_dir) if p != agent.pid] == ffmpeg
                    time.sleep(1)
            keys = [t for t, f in reader.fragments if f.keyframe]
            assert len(keys) >= 3
            assert agent.camera_status()["keyframe_interval"] > 9  # measured by the POD
            playlist = agent.get("/stream", token=stream_token()).text
            durations = [
                float(ln[8:].rstrip(",")) for ln in playlist.splitlines() if "EXTINF" in ln
            ]
            assert durations and max(durations) > 9  # HLS segments follow the 10 s GOP
            print(
                f"\n10 s GOP: keyframes {[round(b - a, 1) for a, b in itertools.pairwise(keys)]} s"
            )
            print(f"HLS segment durations {durations}")
        finally:
            agent.close()


def test_h265_camera_is_served_as_hvc1(tmp_path: Path) -> None:
    """H.265 is passed through (the browser decides whether it can play it), tagged hvc1."""
    with camera(tmp_path, "h265") as hevc:
        agent = Agent(tmp_path, pod_config(tmp_path, hevc.url))
        try:
            agent.wait_status("active", timeout=60)
            with LiveReader(agent) as reader:
                frags = reader.wait(5, "H.265 fragments")
            codecs = reader.headers["x-live-codecs"]
            assert codecs.startswith("hvc1.1.6.L"), codecs  # Main profile, Annex E string
            assert frags[0][1].keyframe
        finally:
            agent.close()
