"""ffmpeg command lines, as pure functions of the config (unit-tested without spawning)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from platebridge.pod.config import CameraConfig, PodConfig

PLAYLIST_NAME = "index.m3u8"
SEGMENT_PATTERN = "seg_%d.ts"
#: What a segment name served over HTTP must look like (nothing else is ever opened).
SEGMENT_NAME = re.compile(r"^seg_[0-9]{1,20}\.ts$")
HLS_FLAGS = "delete_segments+independent_segments+temp_file+program_date_time+discont_start"


def camera_dir(config: PodConfig, camera_id: str) -> Path:
    return config.hls_dir / camera_id


@dataclass(frozen=True)
class MediaInfo:
    """What a probe of the camera found (``ffprobe`` before each ffmpeg start)."""

    video_codec: str | None = None
    video_profile: str | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    audio_codec: str | None = None
    audio_rate: int | None = None


#: Audio codecs the live path (MSE: AAC only) and HLS carry: passed through or converted.
AUDIO_COPY = frozenset({"aac"})
AUDIO_TO_AAC = frozenset({"pcm_alaw", "pcm_mulaw"})
#: G.711 is 8 kHz mono: 32 kbit/s AAC-LC is plenty (and under the encoder's per-frame cap).
AAC_BITRATE = "32k"
LIVE_MOVFLAGS = "empty_moov+default_base_moof+frag_keyframe"
#: The muxer waits for every stream before writing (10 s by default): with audio, video was
#: held ~400 ms for the AAC encoder (measured, G.711 camera); 20 ms brings that to one frame.
LIVE_INTERLEAVE_US = "20000"


def audio_plan(media: MediaInfo | None) -> tuple[list[str], str | None]:
    """ffmpeg audio options for both outputs and a note for the camera's status.

    AAC is copied, G.711 (A-law/µ-law) converted to AAC, any other audio dropped (the note
    says so). Without a probe result (it failed) the first audio stream, if any, is encoded
    as AAC: whatever it is, it plays.
    """
    to_aac = ["-c:a", "aac", "-b:a", AAC_BITRATE]
    if media is None:
        return ["-map", "0:a:0?", *to_aac], None
    codec = media.audio_codec
    if codec is None:
        return [], None
    if codec in AUDIO_COPY:
        return ["-map", "0:a:0", "-c:a", "copy"], None
    if codec in AUDIO_TO_AAC:
        return ["-map", "0:a:0", *to_aac], f"audio {codec} converted to AAC"
    return [], f"audio {codec} is not supported (AAC or G.711 only): dropped"


def camera_argv(
    config: PodConfig, camera: CameraConfig, media: MediaInfo | None = None, live: bool = True
) -> list[str]:
    """One RTSP session (over TCP), two outputs: HLS (MPEG-TS segments) and live fMP4 on stdout.

    Video is stream-copied into both. HLS: ``-timeout`` (µs) makes ffmpeg give up on a camera
    that stops answering; the epoch start number keeps media sequence numbers growing across
    restarts so players never go backwards; ``temp_file`` means a segment is only visible once
    complete; segments are cut at keyframes only, so they last at least one keyframe interval
    (``hls_time`` is a lower bound, the playlist's target duration follows the camera's GOP).
    Live (``pipe:1``): an init segment then one fragment per video frame (``frag_duration``
    of 1 µs cuts before every frame; ``frag_every_frame`` mis-times video in ffmpeg 5.1 when
    audio is mapped and the first RTSP packet has no timestamp), flushed at once.
    """
    out = camera_dir(config, camera.camera_id)
    audio, _ = audio_plan(media)
    maps = ["-map", "0:v:0", *audio, "-c:v", "copy"]
    argv = [
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
        *maps,
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
    if live:
        # Safari's MSE takes H.265 only as hvc1 (parameter sets in the init segment)
        tag = ["-tag:v", "hvc1"] if media is not None and media.video_codec == "hevc" else []
        argv += [*maps, *tag, "-f", "mp4", "-movflags", LIVE_MOVFLAGS, "-frag_duration", "1"]
        argv += ["-max_interleave_delta", LIVE_INTERLEAVE_US, "-flush_packets", "1", "pipe:1"]
    return argv


def media_probe_argv(ffprobe_path: str, camera: CameraConfig, timeout: float) -> list[str]:
    """The camera's streams as JSON (codec, profile, size, frame rate, audio rate)."""
    return [
        ffprobe_path,
        "-v",
        "error",
        "-rtsp_transport",
        "tcp",
        "-timeout",
        str(int(timeout * 1_000_000)),
        "-show_entries",
        "stream=codec_type,codec_name,profile,width,height,avg_frame_rate,sample_rate",
        "-of",
        "json",
        camera.url,
    ]


def _rate(text: object) -> float | None:
    num, _, den = str(text).partition("/")
    try:
        value = float(num) / float(den or 1)
    except (ValueError, ZeroDivisionError):
        return None
    return round(value, 3) if value > 0 else None


def _int(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


def parse_media_probe(text: str) -> MediaInfo:
    """:class:`MediaInfo` from :func:`media_probe_argv`'s output (first video, first audio)."""
    try:
        streams = json.loads(text).get("streams") or []
    except (ValueError, AttributeError):
        streams = []
    video = next((s for s in streams if isinstance(s, dict) and s.get("codec_type") == "video"), {})
    audio = next((s for s in streams if isinstance(s, dict) and s.get("codec_type") == "audio"), {})
    return MediaInfo(
        video_codec=video.get("codec_name"),
        video_profile=video.get("profile"),
        width=_int(video.get("width")),
        height=_int(video.get("height")),
        fps=_rate(video.get("avg_frame_rate")),
        audio_codec=audio.get("codec_name"),
        audio_rate=_int(audio.get("sample_rate")),
    )


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
