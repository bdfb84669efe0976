"""Substreams end to end: a real two-path GStreamer camera (main 640x360 at /stream, a 320x180
substream at /sub), the real POD agent and the real portal (proxy and tunnel).

The substream's RTSP session opens only while someone watches it (live viewers of the sub > 0)
and closes ``substream_idle_seconds`` after the last one left (shortened to 2 s here); the
viewer gets the substream's picture size; the main stream's ffmpeg and its one RTSP session are
not touched. Through the portal, ``stream=sub`` in the stream-token request gives a live URL
that plays the substream. SQLite only."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from platebridge.core.fmp4 import Fragment, InitSegment, Splitter
from tests.pod.test_live_e2e import rtsp_sessions
from tests.support.agent import Agent
from tests.support.builders import CAMERA_ID, stream_token
from tests.support.camera import PROFILES, TestCamera, camera_available
from tests.support.portal import (
    SeededCompany,
    cli,
    login,
    new_sqlite_url,
    portal_process,
    seed_company,
)
from tests.support.procs import pids_with, wait_until
from tests.tunnel.support import TUNNEL_ENV, agent_config

pytestmark = pytest.mark.e2e
IDLE = 2.0
MAIN_SIZE, SUB_SIZE = (640, 360), (320, 180)


@dataclass
class World:
    url: str
    db_url: str
    tenant: SeededCompany
    auth: dict[str, str]
    agent: Agent
    camera: TestCamera
    tmp: Path

    def token(self) -> str:
        tenant = self.tenant
        return stream_token(pod_id=tenant.pod_id, secret=tenant.stream_token_secret)

    @property
    def sub_url(self) -> str:
        assert self.camera.sub_url is not None
        return self.camera.sub_url

    def sub_ffmpegs(self) -> list[int]:
        """Processes holding the substream's URL (its ffprobe and ffmpeg)."""
        return pids_with(self.sub_url)

    def main_ffmpeg(self) -> int:
        (pid,) = [p for p in pids_with(self.agent.hls_dir) if p != self.agent.pid]
        return pid

    def wait_sub_closed(self) -> None:
        wait_until(lambda: not self.sub_ffmpegs(), timeout=IDLE + 15, what="substream stopped")
        wait_until(lambda: rtsp_sessions(self.camera.port) == 1, timeout=10, what="one session")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    if not camera_available():
        pytest.fail("needs /usr/bin/python3 with GStreamer RTSP server and ffmpeg")
    tmp = tmp_path_factory.mktemp("substream")
    db_url = new_sqlite_url(tmp)
    env = TUNNEL_ENV | {"PLATEBRIDGE_POD_NETWORKS": "127.0.0.0/8"}
    profile = PROFILES["h264-main-sub"]
    assert (profile.width, profile.height) == MAIN_SIZE and profile.sub is not None
    assert profile.sub[:2] == SUB_SIZE
    with (
        portal_process(db_url, env, log_dir=tmp) as portal,
        TestCamera(tmp, profile=profile) as cam,
    ):
        tenant = seed_company(db_url)
        config = agent_config(tmp, tenant, cam.url, portal_url=portal.url)
        for key in ("camera_id", "camera_name", "camera_rtsp_url", "camera_position"):
            del config[key]
        config["cameras"] = [
            {
                "camera_id": CAMERA_ID,
                "name": "Gate",
                "rtsp_url": cam.url,
                "sub_rtsp_url": cam.sub_url,
            }
        ]
        config["substream_idle_seconds"] = IDLE
        agent = Agent(tmp, config)
        try:
            agent.wait_status("active", timeout=40)
            auth = login(portal.url, tenant.email, tenant.password)
            world = World(portal.url, db_url, tenant, auth, agent, cam, tmp)

            def streamable() -> bool:
                r = httpx.get(f"{portal.url}/api/cameras", headers=auth, timeout=10)
                return any(c["id"] == CAMERA_ID and c["streamable"] for c in r.json()["cameras"])

            wait_until(streamable, timeout=30, what="camera registered by heartbeat")
            yield world
        finally:
            agent.close()


def picture_size(tmp: Path, data: bytes) -> tuple[int, int]:
    path = tmp / "live.mp4"
    path.write_bytes(data)
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "stream=width,height", "-of", "json", str(path)],
        capture_output=True, text=True, timeout=20, check=True,
    ).stdout  # fmt: skip
    stream = json.loads(out)["streams"][0]
    return int(stream["width"]), int(stream["height"])


def read_live(response: httpx.Response, fragments: int) -> bytes:
    """The init segment and ``fragments`` fragments of an open /live body."""
    splitter, data, count = Splitter(), b"", 0
    for chunk in response.iter_raw():
        for item in splitter.feed(chunk):
            if isinstance(item, InitSegment | Fragment):
                data += item.data
                count += isinstance(item, Fragment)
        if count >= fragments:
            return data
    raise AssertionError("the live body ended early")


def test_substream_opens_only_while_watched_and_main_is_unaffected(world: World) -> None:
    world.wait_sub_closed()
    main_pid = world.main_ffmpeg()
    for _ in range(6):  # the agent has run a while: still no session for the substream
        assert rtsp_sessions(world.camera.port) == 1 and not world.sub_ffmpegs()
        wait_until(lambda: True, timeout=1)
    url = f"{world.agent.base}/live/{CAMERA_ID}"
    params = {"token": world.token(), "stream": "sub"}
    with httpx.stream("GET", url, params=params, timeout=30) as r:
        assert r.status_code == 200, r.read()
        data = read_live(r, 15)
        assert rtsp_sessions(world.camera.port) == 2  # main + the substream's own
        assert len(world.sub_ffmpegs()) == 1
    assert picture_size(world.tmp, data) == SUB_SIZE
    world.wait_sub_closed()  # the last viewer left: closed after the idle time
    with httpx.stream("GET", url, params={"token": world.token()}, timeout=30) as r:
        assert picture_size(world.tmp, read_live(r, 5)) == MAIN_SIZE
    assert world.main_ffmpeg() == main_pid  # the same main ffmpeg all along
    assert world.agent.camera_status()["status"] == "active"


def test_direct_websocket_substream_and_a_second_viewer_share_it(world: World) -> None:
    world.wait_sub_closed()
    ws_url = f"ws://127.0.0.1:{world.agent.config['listen_port']}/live/{CAMERA_ID}/ws"
    query = f"?token={world.token()}&stream=sub"
    with connect(ws_url + query, open_timeout=20) as one, connect(ws_url + query) as two:
        for ws in (one, two):
            hello = json.loads(ws.recv(timeout=20))
            assert hello["type"] == "init" and hello["codecs"].startswith("avc1.")
        assert len(world.sub_ffmpegs()) == 1 and rtsp_sessions(world.camera.port) == 2
    world.wait_sub_closed()


@pytest.mark.parametrize("mode", ["proxy", "tunnel"])
def test_portal_stream_sub_plays_the_substream(world: World, mode: str) -> None:
    cli(world.db_url, "pod", "set-mode", "--pod-id", world.tenant.pod_id, "--mode", mode)
    world.wait_sub_closed()
    body = {"pod_id": world.tenant.pod_id, "camera_id": CAMERA_ID, "stream": "sub"}
    r = httpx.post(f"{world.url}/api/pod/stream-token", headers=world.auth, json=body, timeout=15)
    assert r.status_code == 200, r.text
    live_url = r.json()["live_url"]
    assert live_url.endswith("&stream=sub")
    ws_base = world.url.replace("http://", "ws://")
    with connect(ws_base + live_url, open_timeout=30, max_size=None) as ws:
        hello = json.loads(ws.recv(timeout=30))
        assert hello["type"] == "init", hello
        data = b"".join(ws.recv(timeout=20) for _ in range(12))  # type: ignore[misc]
        assert rtsp_sessions(world.camera.port) == 2
    assert picture_size(world.tmp, data) == SUB_SIZE
    world.wait_sub_closed()  # the portal's upstream lingers, then the POD's idle time
