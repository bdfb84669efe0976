"""The GStreamer test camera's profiles (tests/support/camera.py) send what they say: codec and
profile, picture size, keyframe interval (no scene-cut keyframes), audio codec; digest auth
refuses a wrong password; a substream has its own size; a drop-out takes the stream away and
gives it back."""

from __future__ import annotations

import dataclasses
import itertools
import subprocess
from pathlib import Path

import pytest

from tests.camera._probe import keyframe_times, rtsp_request, streams
from tests.support.camera import PROFILES, CameraProfile, TestCamera, camera_available
from tests.support.procs import wait_until

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not camera_available(), reason="needs GStreamer's RTSP server"),
]

VIDEO = {"h264": "h264", "h265": "hevc"}
H264_PROFILE = {"baseline": "Constrained Baseline", "main": "Main", "high": "High"}
AUDIO = {"pcma": ("pcm_alaw", 8000), "pcmu": ("pcm_mulaw", 8000), "aac": ("aac", 16000)}


def _check_streams(profile: CameraProfile, url: str) -> None:
    found = streams(url)
    video = [s for s in found if s["codec_type"] == "video"]
    audio = [s for s in found if s["codec_type"] == "audio"]
    assert len(video) == 1, found
    v = video[0]
    assert v["codec_name"] == VIDEO[profile.codec]
    assert (v["width"], v["height"]) == (profile.width, profile.height)
    if profile.codec == "h264":
        assert v["profile"] == H264_PROFILE[profile.h264_profile]
    else:
        assert v["profile"] == "Main"
    if profile.audio == "none":
        assert audio == []
    else:
        assert len(audio) == 1, found
        codec, rate = AUDIO[profile.audio]
        assert (audio[0]["codec_name"], int(str(audio[0]["sample_rate"]))) == (codec, rate)


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_profile_sends_what_it_says(name: str, tmp_path: Path) -> None:
    profile = PROFILES[name]
    user = "admin" if name == "digest" else None
    with TestCamera(tmp_path, profile=profile, user=user, password=user and "s3cret") as cam:
        _check_streams(profile, cam.url)
        if profile.sub is not None:
            assert cam.sub_url is not None
            w, h, _ = profile.sub
            _check_streams(dataclasses.replace(profile, width=w, height=h), cam.sub_url)
        else:
            assert cam.sub_url is None
        # Keyframes exactly every gop_s: two intervals (one from 4 s up, to stay quick).
        count = 2 if profile.gop_s >= 4 else 3
        times = keyframe_times(cam.url, count, timeout=profile.gop_s * count + 15)
        assert len(times) == count, times
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert all(abs(g - profile.gop_s) < 0.05 for g in gaps), gaps


def test_h264_default_is_todays_camera(tmp_path: Path) -> None:
    """No profile: the small 1 s-GOP Constrained Baseline camera the other tests know."""
    with TestCamera(tmp_path) as cam:
        (v,) = streams(cam.url)
        assert (v["codec_name"], v["profile"], v["width"], v["height"]) == (
            "h264",
            "Constrained Baseline",
            320,
            240,
        )
        times = keyframe_times(cam.url, 3, timeout=15)
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert len(gaps) == 2 and all(abs(g - 1.0) < 0.05 for g in gaps), gaps


def test_digest_auth(tmp_path: Path) -> None:
    profile = PROFILES["digest"]
    with TestCamera(tmp_path, profile=profile, user="admin", password="s3cret") as cam:
        challenge = rtsp_request(cam.port, "DESCRIBE")
        assert challenge.startswith("RTSP/1.0 401"), challenge
        assert "WWW-Authenticate: Digest " in challenge and "Basic" not in challenge
        wrong = cam.url.replace(":s3cret@", ":wrong@")
        out = subprocess.run(
            ["ffprobe", "-v", "error", "-rtsp_transport", "tcp", wrong],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert out.returncode != 0 and "401" in out.stderr, out.stderr
        assert streams(cam.url)[0]["codec_name"] == "h264"  # the right password works


def test_dropout_by_signal(tmp_path: Path) -> None:
    with TestCamera(tmp_path, profile=PROFILES["h264-main-gop2"]) as cam:
        assert rtsp_request(cam.port, "DESCRIBE").startswith("RTSP/1.0 200")
        assert cam.proc is not None
        cam.toggle_dropout()
        wait_until(lambda: "DROPOUT start" in cam.proc.output(), timeout=10)  # type: ignore[union-attr]
        assert rtsp_request(cam.port, "DESCRIBE").startswith("RTSP/1.0 404")
        cam.toggle_dropout()
        wait_until(lambda: "DROPOUT end" in cam.proc.output(), timeout=10)  # type: ignore[union-attr]
        assert streams(cam.url)[0]["codec_name"] == "h264"


def test_scheduled_dropouts_come_and_go(tmp_path: Path) -> None:
    with TestCamera(tmp_path, profile=PROFILES["h264-main-gop2"], dropout=(3, 1.5)) as cam:
        assert cam.proc is not None
        wait_until(lambda: "DROPOUT start" in cam.proc.output(), timeout=15)  # type: ignore[union-attr]
        wait_until(lambda: "DROPOUT end" in cam.proc.output(), timeout=15)  # type: ignore[union-attr]
        wait_until(
            lambda: rtsp_request(cam.port, "DESCRIBE").startswith("RTSP/1.0 200"), timeout=10
        )
