"""transcode: h264 end to end: a real H.265 GStreamer camera (2 s keyframe interval), the real
agent encoding once with libx264 into both outputs: the live output is H.264 (``avc1`` in the
init segment, what Chromium's MSE plays), so are the HLS segments, with the encoder's own 1 s
keyframes; still one ffmpeg and one RTSP session."""

from __future__ import annotations

import dataclasses
import itertools
import subprocess
from collections.abc import Iterator

import httpx
import pytest

from platebridge.core.fmp4 import Fragment, InitSegment, Splitter, codecs_from_init
from tests.pod.test_live_e2e import rtsp_sessions
from tests.support.agent import Agent
from tests.support.builders import CAMERA_ID, pod_config, stream_token
from tests.support.camera import PROFILES, TestCamera, camera_available
from tests.support.procs import pids_with, wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def cam(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestCamera]:
    if not camera_available():
        pytest.fail("needs /usr/bin/python3 with GStreamer RTSP server and ffmpeg")
    small = {"width": 320, "height": 240, "fps": 15, "bitrate_kbps": 300, "audio": "pcma"}
    profile = dataclasses.replace(PROFILES["h265"], **small)  # type: ignore[arg-type]
    with TestCamera(tmp_path_factory.mktemp("camera"), profile=profile) as c:
        yield c


@pytest.fixture(scope="module")
def agent(cam: TestCamera, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Agent]:
    tmp = tmp_path_factory.mktemp("agent")
    config = pod_config(tmp, cam.url)
    for key in ("camera_id", "camera_name", "camera_rtsp_url", "camera_position"):
        del config[key]
    config["cameras"] = [
        {"camera_id": CAMERA_ID, "name": "Gate", "rtsp_url": cam.url, "transcode": "h264"}
    ]
    agent = Agent(tmp, config)
    try:
        agent.wait_status("active", timeout=60)
        yield agent
    finally:
        agent.close()


def test_h265_camera_plays_as_h264_through_the_live_output(agent: Agent, cam: TestCamera) -> None:
    url = f"{agent.base}/live/{CAMERA_ID}"
    splitter, items = Splitter(), []
    with httpx.stream("GET", url, params={"token": stream_token()}, timeout=30) as r:
        assert r.status_code == 200, r.read()
        header = r.headers["x-live-codecs"]
        for chunk in r.iter_raw():
            items += splitter.feed(chunk)
            if sum(isinstance(i, Fragment) for i in items) >= 40:
                break
        ffmpegs = [p for p in pids_with(agent.hls_dir) if p != agent.pid]
        assert len(ffmpegs) == 1 and rtsp_sessions(cam.port) == 1  # one encode, one session
    init = items[0]
    assert isinstance(init, InitSegment)
    codecs = codecs_from_init(init.data)
    assert codecs.startswith("avc1.64") and codecs.endswith(",mp4a.40.2"), codecs  # High + AAC
    assert header == codecs
    fragments = [i for i in items if isinstance(i, Fragment)]
    assert fragments[0].keyframe
    # the encoder's keyframes (1 s at 15 fps), not the camera's 2 s GOP
    keys = [n for n, f in enumerate(fragments) if f.keyframe]
    assert len(keys) >= 2 and all(b - a <= 20 for a, b in itertools.pairwise(keys))
    wait_until(
        lambda: (agent.camera_status().get("keyframe_interval") or 9) < 1.6,
        timeout=20,
        what="measured keyframe interval about 1 s",
    )


def test_hls_segments_are_h264_too(agent: Agent) -> None:
    playlist = agent.get("/stream", token=stream_token())
    assert playlist.status_code == 200
    segment = [ln for ln in playlist.text.splitlines() if ln.startswith("stream/")][-1]
    data = httpx.get(f"{agent.base}/{segment}", timeout=10).content
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0", "-"],
        input=data,
        capture_output=True,
        timeout=20,
        check=True,
    )
    assert set(probe.stdout.decode().split()) == {"h264", "aac"}  # (listed per program too)
    assert "#EXT-X-TARGETDURATION:1" in playlist.text  # 1 s keyframes: 1 s segments
