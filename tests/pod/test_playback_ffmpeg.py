"""Playback of files real ffmpeg recorded with the recorder's muxer options (in-process app,
real SQLite): the media body decodes and starts at 0, an export across a file boundary lasts
the range asked ±1 s per ffprobe (the camera + agent end to end: test_playback_e2e)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from platebridge.pod.ffmpeg import RECORD_FORMAT_OPTIONS
from platebridge.pod.http import create_app
from platebridge.pod.recording.recorder import Recording
from platebridge.pod.supervisor import CameraState
from tests.pod.test_http_routes import make_config
from tests.pod.test_playback_plan import T0, index_row
from tests.support.builders import CAMERA_ID, footage_token

pytestmark = pytest.mark.e2e

CAM = CAMERA_ID
FILE_SECONDS = 10


def record_files(day: Path, seconds: int, gop_frames: int) -> list[Path]:
    """``seconds`` of 15 fps H.264 + AAC as the recorder writes them (segment muxer, 1 s
    fragments, prft), in files of :data:`FILE_SECONDS`."""
    day.mkdir(parents=True)
    argv = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi"]
    argv += ["-i", "testsrc=size=320x240:rate=15", "-f", "lavfi", "-i", "sine=sample_rate=16000"]
    argv += ["-t", str(seconds), "-map", "0:v", "-map", "1:a", "-c:v", "libx264"]
    argv += ["-preset", "ultrafast", "-g", str(gop_frames), "-sc_threshold", "0", "-c:a", "aac"]
    argv += ["-f", "segment", "-segment_time", str(FILE_SECONDS), "-segment_format", "mp4"]
    argv += ["-segment_format_options", RECORD_FORMAT_OPTIONS, str(day / "%06d.mp4")]
    subprocess.run(argv, check=True, timeout=60)
    return sorted(day.iterdir())


def ffprobe(path: Path, *entries: str) -> dict[str, Any]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", ":".join(entries), "-of", "json", str(path)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    data: dict[str, Any] = json.loads(out.stdout)
    return data


def decodes(path: Path) -> bool:
    """Every frame decodes without an error. Frame times pass through in the file's own time
    base: a camera's frames 65 µs apart would otherwise collide in a 1/fps one."""
    argv = ["ffmpeg", "-v", "error", "-xerror", "-i", str(path), "-fps_mode", "passthrough"]
    run = subprocess.run(
        [*argv, "-enc_time_base", "-1", "-f", "null", "-"],
        capture_output=True,
        timeout=60,
    )
    return run.returncode == 0 and not run.stderr.strip()


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    config = make_config(tmp_path, recording_dir=str(tmp_path / "rec"))
    rec = Recording(config)
    assert rec.index is not None
    files = record_files(tmp_path / "rec" / CAM / "2026-01-01", 30, 15)
    start = T0
    for path in files:
        row = index_row(path, start)
        rec.index.put(row)
        start = row.end
    states = {c.camera_id: CameraState(c.camera_id, c.name) for c in config.cameras}
    app = create_app(config, states, recording=rec)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://pod", timeout=60) as c:
        yield c
    rec.close()


def tok() -> str:
    return footage_token(CAM, start=int(T0) - 60, end=int(T0) + 3600)


async def test_media_decodes_from_zero(client: httpx.AsyncClient, tmp_path: Path) -> None:
    params: dict[str, Any] = {"token": tok(), "start": T0 + 12.4, "duration": 5}
    r = await client.get(f"/recordings/{CAM}/media", params=params)
    assert r.status_code == 200, r.text
    start = float(r.headers["x-platebridge-media-start"])
    assert T0 + 11.3 <= start <= T0 + 12.4  # the keyframe at or before (1 s GOP)
    end = float(r.headers["x-platebridge-media-end"])
    assert T0 + 17.4 - 0.01 <= end <= T0 + 18.5
    body = tmp_path / "media.mp4"
    body.write_bytes(r.content)
    assert decodes(body)
    info = ffprobe(body, "stream=codec_type,start_time", "format=duration")
    assert {s["codec_type"] for s in info["streams"]} == {"video", "audio"}
    assert all(float(s["start_time"]) < 0.2 for s in info["streams"])  # rebased to 0
    assert float(info["format"]["duration"]) == pytest.approx(end - start, abs=0.3)


async def test_export_across_files(client: httpx.AsyncClient, tmp_path: Path) -> None:
    params: dict[str, Any] = {"token": tok(), "from": T0 + 4.5, "to": T0 + 14.5}
    r = await client.get(f"/recordings/{CAM}/export", params=params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "video/mp4"
    assert r.headers["content-disposition"] == (
        f'attachment; filename="{CAM}-20260101T000004Z.mp4"'
    )
    out = tmp_path / "export.mp4"
    out.write_bytes(r.content)
    assert int(r.headers["content-length"]) == len(r.content)
    duration = float(ffprobe(out, "format=duration")["format"]["duration"])
    assert duration == pytest.approx(10, abs=1)
    assert decodes(out)
    # faststart: the moov comes before the mdat
    assert r.content.index(b"moov") < r.content.index(b"mdat")
    # nothing left behind in the work directory
    assert list((tmp_path / "rec" / ".exports").iterdir()) == []
