"""core.fmp4 on real ffmpeg output: init, one fragment per frame, keyframes where ffprobe says,
codecs strings matching ffprobe's profile and level."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from platebridge.core.fmp4 import Fragment, Splitter, codecs_from_init, iter_boxes

pytestmark = pytest.mark.e2e

FFMPEG = shutil.which("ffmpeg") or "ffmpeg"
FFPROBE = shutil.which("ffprobe") or "ffprobe"
FRAMES = 60
#: ffprobe profile names → avcC profile_idc
H264_PROFILES = {"Baseline": 66, "Constrained Baseline": 66, "Main": 77, "High": 100}


def make_sample(path: Path, video: list[str], audio: bool) -> bytes:
    argv = [FFMPEG, "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
    argv += ["-f", "lavfi", "-i", "testsrc=size=320x240:rate=25"]
    if audio:
        argv += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=8000"]
    argv += ["-frames:v", str(FRAMES), "-pix_fmt", "yuv420p", *video]
    if audio:
        argv += ["-c:a", "aac", "-shortest"]
    argv += ["-f", "mp4", "-movflags", "empty_moov+default_base_moof+frag_every_frame", "pipe:1"]
    data = subprocess.run(argv, capture_output=True, check=True, timeout=60).stdout
    path.write_bytes(data)
    return data


def probe(path: Path) -> tuple[dict[str, object], list[bool]]:
    streams = subprocess.run(
        [FFPROBE, "-v", "error", "-select_streams", "v:0", "-show_entries",
         "stream=codec_name,profile,level", "-of", "json", str(path)],
        capture_output=True, check=True, text=True,
    )  # fmt: skip
    packets = subprocess.run(
        [FFPROBE, "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=flags",
         "-of", "csv=p=0", str(path)],
        capture_output=True, check=True, text=True,
    )  # fmt: skip
    keys = [line.startswith("K") for line in packets.stdout.split()]
    return json.loads(streams.stdout)["streams"][0], keys


def split_in_chunks(data: bytes, step: int = 1000) -> tuple[bytes, list[Fragment]]:
    splitter, inits, frags = Splitter(), [], []
    for i in range(0, len(data), step):
        for item in splitter.feed(data[i : i + step]):
            (frags if isinstance(item, Fragment) else inits).append(item)
    assert len(inits) == 1 and splitter.reader.buffered == 0
    return inits[0].data, frags


def video_track_fragments(frags: list[Fragment]) -> list[Fragment]:
    """The fragments that carry the video track (track 1); the others are audio only."""
    out = []
    for fragment in frags:
        moof = next((b, e) for kind, b, e in iter_boxes(fragment.data) if kind == "moof")
        for kind, body, _end in iter_boxes(fragment.data, *moof):
            if kind == "traf" and fragment.data[body + 12 : body + 16] == b"\0\0\0\x01":
                out.append(fragment)
    return out


@pytest.mark.parametrize("audio", [False, True], ids=["video", "video+aac"])
def test_h264_fragments_keyframes_codecs(tmp_path: Path, audio: bool) -> None:
    path = tmp_path / "h264.mp4"
    data = make_sample(path, ["-c:v", "libx264", "-g", "25", "-profile:v", "high"], audio)
    init, frags = split_in_chunks(data)
    stream, keys = probe(path)
    profile = H264_PROFILES[str(stream["profile"])]
    codecs = codecs_from_init(init)
    video = codecs.split(",")[0]
    assert video.startswith(f"avc1.{profile:02x}") and int(video[-2:], 16) == stream["level"]
    assert codecs.endswith(",mp4a.40.2") == audio
    key_positions = [i for i, k in enumerate(keys) if k]
    assert key_positions == [0, 25, 50]
    # one video fragment per frame; keyframe fragments exactly where ffprobe says
    video_frags = video_track_fragments(frags)
    assert len(video_frags) == FRAMES
    assert [f.keyframe for f in video_frags] == keys
    assert sum(f.keyframe for f in frags) == len(key_positions)  # audio-only ones never
    assert len(frags) > FRAMES if audio else len(frags) == FRAMES


@pytest.mark.parametrize("tag", ["hvc1", "hev1"])
def test_h265_codecs_and_keyframes(tmp_path: Path, tag: str) -> None:
    path = tmp_path / "h265.mp4"
    video = ["-c:v", "libx265", "-x265-params", "keyint=25:min-keyint=25:scenecut=0:log-level=1"]
    data = make_sample(path, [*video, "-tag:v", tag], audio=False)
    init, frags = split_in_chunks(data)
    stream, keys = probe(path)
    codecs = codecs_from_init(init)
    assert stream["profile"] == "Main"
    parts = codecs.split(".")
    assert parts[0] == tag and parts[1] == "1" and parts[2] == "6"
    assert parts[3] == f"L{stream['level']}"
    assert [f.keyframe for f in frags] == keys and keys.count(True) == 3
