"""The playback API of a real agent recording a real test camera (the clock camera: the wall
time burned into each picture) for ~30 s, over loopback HTTP: spans, ``/media`` at a past time
(decodes, starts at the keyframe at or before it, the first frame shows Media-Start), an export
of 10 s (ffprobe: 10 ± 1 s), and the refusals of live and out-of-range tokens."""

from __future__ import annotations

import dataclasses
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.camera._probe import clock_code
from tests.pod.test_playback_ffmpeg import decodes, ffprobe
from tests.support.agent import Agent
from tests.support.builders import CAMERA_ID, footage_token, pod_config, stream_token
from tests.support.camera import PROFILES, TestCamera, camera_available
from tests.support.procs import wait_until

pytestmark = pytest.mark.e2e

WIDTH, HEIGHT, GOP = 640, 360, 2.0
cc = clock_code()


def first_frame_clock(path: Path) -> float | None:
    """The burned-in wall time (s) of the first decoded picture of ``path``."""
    argv = ["ffmpeg", "-v", "error", "-i", str(path), "-frames:v", "1", "-vf", "format=gray"]
    gray = subprocess.run(
        [*argv, "-f", "rawvideo", "-"],
        capture_output=True,
        timeout=60,
        check=True,
    ).stdout
    size = cc.block_size(WIDTH)
    bits = []
    for i in range(cc.BITS):
        x = size + (i % cc.PER_ROW) * size + size // 2
        y = size + (i // cc.PER_ROW) * size + size // 2
        bits.append(1 if gray[y * WIDTH + x] > 128 else 0)
    value = cc.decode(bits)
    if value is None:
        return None
    now_ms = int(time.time() * 1000)
    ms = now_ms - ((now_ms - value) % cc.MODULUS)  # unwrap (ms mod 2**40)
    return float(ms) / 1000


def test_playback_from_a_recording_camera(tmp_path: Path) -> None:
    if not camera_available():
        pytest.fail("needs /usr/bin/python3 with GStreamer RTSP server and ffmpeg")
    profile = dataclasses.replace(
        PROFILES["clock"], width=WIDTH, height=HEIGHT, fps=15, bitrate_kbps=500, gop_s=GOP
    )
    cam = TestCamera(tmp_path, profile=profile)
    cam.start()
    config = pod_config(tmp_path, cam.url, recording_file_seconds=10)
    agent = Agent(tmp_path, config)
    try:
        agent.wait_status("active", timeout=60)
        began = time.time()
        day = (int(began) - 3600, int(began) + 3600)
        tok = footage_token(start=day[0], end=day[1])
        base = f"{agent.base}/recordings/{CAMERA_ID}"

        def spans() -> list[dict[str, Any]]:
            r = httpx.get(base, params={"token": tok, "from": began - 60, "to": time.time()})
            assert r.status_code == 200, r.text
            found: list[dict[str, Any]] = r.json()["spans"]
            return found

        # ~30 s recorded (files of 10 s are closed and indexed as they are cut)
        wait_until(
            lambda: any(s["kind"] == "recording" and s["end"] >= began + 28 for s in spans()),
            timeout=90,
            interval=2,
            what="30 s recorded",
        )
        recorded = [s for s in spans() if s["kind"] == "recording"]
        assert recorded[0]["start"] <= began + 3
        assert sum(s["end"] - s["start"] for s in recorded) >= 25

        # /media at a past time: keyframe at or before it, within one GOP, decodes
        at = began + 11.3
        r = httpx.get(f"{base}/media", params={"token": tok, "start": at, "duration": 5})
        assert r.status_code == 200, r.text
        start = float(r.headers["x-platebridge-media-start"])
        end = float(r.headers["x-platebridge-media-end"])
        assert at - GOP - 0.2 <= start <= at
        # to the keyframe after at + 5, short of it only where the file ends
        assert at < end <= at + 5 + GOP + 0.2
        nxt = float(r.headers["x-platebridge-next"])
        assert end - 0.001 <= nxt <= end + 1.5
        # the next body follows on without overlap (the next file, or the next keyframe)
        more = httpx.get(f"{base}/media", params={"token": tok, "start": nxt, "duration": 5})
        assert more.status_code == 200, more.text
        assert abs(float(more.headers["x-platebridge-media-start"]) - nxt) <= 0.1
        body = tmp_path / "media.mp4"
        body.write_bytes(r.content)
        assert decodes(body)
        video = ffprobe(body, "stream=codec_type,start_time")["streams"]
        assert any(s["codec_type"] == "video" and float(s["start_time"]) < 0.2 for s in video)
        shown = first_frame_clock(body)
        assert shown is not None and abs(shown - start) <= 0.5, (shown, start)

        # an export of 10 s: one MP4, 10 ± 1 s per ffprobe
        params: dict[str, Any] = {"token": tok, "from": began + 4.5, "to": began + 14.5}
        t0 = time.monotonic()
        ex = httpx.get(f"{base}/export", params=params, timeout=60)
        took = time.monotonic() - t0
        assert ex.status_code == 200, ex.text
        assert ex.headers["content-disposition"].startswith(f'attachment; filename="{CAMERA_ID}-')
        out = tmp_path / "export.mp4"
        out.write_bytes(ex.content)
        duration = float(ffprobe(out, "format=duration")["format"]["duration"])
        print(f"export 10 s: ffprobe {duration:.3f} s, {took:.2f} s to make and fetch")
        assert duration == pytest.approx(10, abs=1)
        assert decodes(out)

        # the HLS VOD playlist, read by ffmpeg's HLS client (its URIs have no file extension)
        vod_q = {"token": tok, "from": began, "to": began + 25}
        vod = httpx.get(f"{base}/vod.m3u8", params=vod_q)
        assert vod.status_code == 200, vod.text
        listed = sum(float(x[8:-1]) for x in vod.text.splitlines() if x.startswith("#EXTINF:"))
        assert listed >= 15
        hls = tmp_path / "vod.mp4"
        lenient = ["-allowed_segment_extensions", "ALL", "-extension_picky", "0"]
        subprocess.run(
            ["ffmpeg", "-v", "error", *lenient, "-i", str(vod.url), "-c", "copy", str(hls)],
            check=True,
            timeout=60,
        )
        vod_duration = float(ffprobe(hls, "format=duration")["format"]["duration"])
        print(f"vod: {listed:.3f} s listed, ffmpeg read {vod_duration:.3f} s")
        assert vod_duration == pytest.approx(listed, abs=1)
        assert decodes(hls)

        # refusals: a live token, a footage token that does not cover the range
        live = httpx.get(f"{base}/media", params={"token": stream_token(), "start": at})
        assert live.status_code == 403 and live.json()["error"] == "wrong_scope"
        narrow = footage_token(start=int(began) + 20, end=int(began) + 25)
        out_of = httpx.get(f"{base}/media", params={"token": narrow, "start": at})
        assert out_of.status_code == 403 and out_of.json()["error"] == "out_of_range"
        ranged = httpx.get(f"{base}/export", params=params | {"token": narrow})
        assert ranged.status_code == 403 and ranged.json()["error"] == "out_of_range"
        # the live paths still refuse the footage token
        assert httpx.get(f"{agent.base}/stream", params={"token": tok}).status_code == 403
        assert agent.stop() == 0
    finally:
        agent.close()
        cam.stop()
