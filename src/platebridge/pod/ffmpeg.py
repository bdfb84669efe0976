"""ffmpeg command lines, as pure functions of the config (unit-tested without spawning)."""

from __future__ import annotations

import re
from pathlib import Path

from platebridge.pod.config import CameraConfig, PodConfig

PLAYLIST_NAME = "index.m3u8"
SEGMENT_PATTERN = "seg_%d.ts"
#: What a segment name served over HTTP must look like (nothing else is ever opened).
SEGMENT_NAME = re.compile(r"^seg_[0-9]{1,20}\.ts$")
HLS_FLAGS = "delete_segments+independent_segments+temp_file+program_date_time+discont_start"


def camera_dir(config: PodConfig, camera_id: str) -> Path:
    return config.hls_dir / camera_id


def hls_argv(config: PodConfig, camera: CameraConfig) -> list[str]:
    """RTSP over TCP → HLS (MPEG-TS segments), stream copy, old segments deleted.

    ``-timeout`` (µs) makes ffmpeg give up on a camera that stops answering; the epoch start
    number keeps media sequence numbers growing across restarts so players never go backwards;
    ``temp_file`` means a segment is only visible once complete.
    """
    out = camera_dir(config, camera.camera_id)
    return [
        config.ffmpeg_path,
        "-nostdin",
        "-hide_banner",
        "-nostats",
        "-loglevel",
        "warning",
        "-rtsp_transport",
        "tcp",
        "-timeout",
        str(int(config.rtsp_timeout * 1_000_000)),
        "-i",
        camera.url,
        "-map",
        "0:v:0",
        "-map",
        "0:a:0?",
        "-c",
        "copy",
        "-f",
        "hls",
        "-hls_time",
        f"{config.hls_segment_seconds:g}",
        "-hls_list_size",
        str(config.hls_list_size),
        "-hls_delete_threshold",
        "2",
        "-hls_flags",
        HLS_FLAGS,
        "-hls_start_number_source",
        "epoch",
        "-hls_segment_type",
        "mpegts",
        "-hls_segment_filename",
        str(out / SEGMENT_PATTERN),
        str(out / PLAYLIST_NAME),
    ]


def snapshot_argv(ffmpeg_path: str, segment: Path, width: int = 640) -> list[str]:
    """First frame of a (keyframe-led) segment as a JPEG on stdout, scaled for thumbnails."""
    return [
        ffmpeg_path,
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "error",
        "-i",
        str(segment),
        "-frames:v",
        "1",
        "-vf",
        f"scale='min({width},iw)':-2",
        "-q:v",
        "5",
        "-f",
        "image2",
        "-c:v",
        "mjpeg",
        "pipe:1",
    ]


def probe_argv(ffprobe_path: str, camera: CameraConfig, timeout: float) -> list[str]:
    return [
        ffprobe_path,
        "-v",
        "error",
        "-rtsp_transport",
        "tcp",
        "-timeout",
        str(int(timeout * 1_000_000)),
        "-select_streams",
        "v:0",
        "-show_entries",
        "stream=codec_name,width,height",
        "-of",
        "csv=p=0",
        camera.url,
    ]
