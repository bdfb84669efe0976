"""ffmpeg command lines, as pure functions of the config (unit-tested without spawning)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from platebridge.pod.config import CameraConfig, PodConfig
from platebridge.pod.transcode import (
    Encode,
    H264Encoder,
    global_args,
    tee_slave,
    video_args,
)

PLAYLIST_NAME = "index.m3u8"
SEGMENT_PATTERN = "seg_%d.ts"
#: What a segment name served over HTTP must look like (nothing else is ever opened).
SEGMENT_NAME = re.compile(r"^seg_[0-9]{1,20}\.ts$")
HLS_FLAGS = "delete_segments+independent_segments+temp_file+program_date_time+discont_start"


def camera_dir(config: PodConfig, camera_id: str) -> Path:
    return config.hls_dir / camera_id


def recording_dir(config: PodConfig, camera_id: str) -> Path:
    return config.recording_dir / camera_id


#: A recorded file's name below its camera's directory (strftime, UTC: ffmpeg runs with TZ=UTC).
RECORDING_PATTERN = "%Y-%m-%d/%H%M%S.mp4"
#: Fragments of at most 1 s (and a new one at every keyframe), each with a ``prft`` box: the
#: wall clock the index puts on the media time (:mod:`platebridge.pod.recording.mp4scan`).
#: ``flush_packets=1`` writes every fragment to the file as it is cut: without it the segment's
#: 32 KiB I/O buffer (and ffmpeg 5.1's segment muxer) held a whole file back, so ``kill -9``
#: lost everything since the file began instead of at most the fragment being written.
RECORD_MOVFLAGS = "empty_moov+default_base_moof+frag_keyframe"
RECORD_FORMAT_OPTIONS = (
    f"movflags={RECORD_MOVFLAGS}:frag_duration=1000000:write_prft=wallclock:flush_packets=1"
)


def recording_output(config: PodConfig, camera_id: str) -> tuple[list[str], str]:
    """The recording output's muxer options and its strftime file pattern: ``segment`` cuts
    a new MP4 file at the first keyframe after every ``recording_file_seconds`` of wall clock
    (aligned to the clock: 60 s files start on the minute)."""
    directory = str(recording_dir(config, camera_id)).replace("%", "%%")
    options = [
        "-f",
        "segment",
        "-segment_time",
        str(config.recording_file_seconds),
        "-segment_atclocktime",
        "1",
        "-segment_format",
        "mp4",
        "-segment_format_options",
        RECORD_FORMAT_OPTIONS,
        "-strftime",
        "1",
    ]
    return options, f"{directory}/{RECORDING_PATTERN}"


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


def rtsp_input(url: str, timeout: float) -> list[str]:
    """The RTSP input (over TCP) of every ffmpeg and ffprobe: ``-timeout`` (µs) makes it give
    up on a camera that stops answering. Input options come before ``-i``."""
    return ["-rtsp_transport", "tcp", "-timeout", str(int(timeout * 1_000_000)), "-i", url]


def _ffmpeg_head(ffmpeg_path: str) -> list[str]:
    return [ffmpeg_path, "-nostdin", "-hide_banner", "-nostats", "-loglevel", "warning"]


def hls_output(config: PodConfig, camera_id: str) -> tuple[list[str], str]:
    """The HLS output's muxer options and its playlist path."""
    out = camera_dir(config, camera_id)
    options = [
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
    ]
    return options, str(out / PLAYLIST_NAME)


#: The live output's muxer options (its target is ``pipe:1``).
LIVE_OPTIONS = [
    "-f",
    "mp4",
    "-movflags",
    LIVE_MOVFLAGS,
    "-frag_duration",
    "1",
    "-max_interleave_delta",
    LIVE_INTERLEAVE_US,
    "-flush_packets",
    "1",
]
#: With one encode shared by both outputs (tee), the encoder writes its parameter sets once
#: (global header, what MP4 needs); MPEG-TS needs them before every keyframe again.
TS_EXTRADATA = ["-bsfs/v", "dump_extra=freq=keyframe"]


def encode_for(camera: CameraConfig, media: MediaInfo | None, main: bool = True) -> Encode:
    """What the transcoder encodes for ``camera``: the probed size, the configured scale and
    bitrate (main stream only; a substream keeps its size, the bitrate follows it)."""
    m = media or MediaInfo()
    if not main:
        return Encode(m.width, m.height, fps=m.fps)
    return Encode(m.width, m.height, camera.transcode_width, camera.transcode_bitrate, m.fps)


def camera_argv(
    config: PodConfig,
    camera: CameraConfig,
    media: MediaInfo | None = None,
    live: bool = True,
    encoder: H264Encoder = "libx264",
    record: bool = False,
) -> list[str]:
    """One RTSP session (over TCP), up to three outputs: HLS (MPEG-TS segments), live fMP4 on
    stdout and (``record``) the recording, fMP4 files of :func:`recording_output`.

    Video is stream-copied into both. HLS: the epoch start number keeps media sequence numbers
    growing across restarts so players never go backwards; ``temp_file`` means a segment is only
    visible once complete; segments are cut at keyframes only, so they last at least one
    keyframe interval (``hls_time`` is a lower bound, the playlist's target duration follows
    the camera's GOP). Live (``pipe:1``): an init segment then one fragment per video frame
    (``frag_duration`` of 1 µs cuts before every frame; ``frag_every_frame`` mis-times video in
    ffmpeg 5.1 when audio is mapped and the first RTSP packet has no timestamp), flushed at once.

    ``transcode: h264``: the video is encoded **once** (``encoder``, see
    :mod:`platebridge.pod.transcode`) and both outputs are slaves of one ``tee`` muxer (two
    ordinary outputs would run two encoders); audio as without transcoding. The recording is
    a tee slave with ``onfail=ignore`` there (a full disk stops the recording, not the live
    outputs); as an ordinary output its failure ends ffmpeg, and the supervisor restarts it
    without recording (:mod:`platebridge.pod.recording.recorder`).
    """
    audio, _ = audio_plan(media)
    hls, playlist = hls_output(config, camera.camera_id)
    rec, pattern = recording_output(config, camera.camera_id)
    head = _ffmpeg_head(config.ffmpeg_path)
    if camera.transcode == "h264":
        head += global_args(encoder)
    argv = [*head, *rtsp_input(camera.url, config.rtsp_timeout)]
    if camera.transcode == "h264":
        video = video_args(encoder, encode_for(camera, media))
        argv += ["-map", "0:v:0", *audio, *video]
        if not live and not record:
            return [*argv, *hls, playlist]
        slaves = [tee_slave([*hls, *TS_EXTRADATA], playlist)]
        if live:
            slaves.append(tee_slave(LIVE_OPTIONS, "pipe:1"))
        if record:
            slaves.append(tee_slave([*rec, "-onfail", "ignore"], pattern))
        tee = ["-flags:v", "+global_header", "-f", "tee"]
        return [*argv, *tee, "-max_interleave_delta", LIVE_INTERLEAVE_US, "|".join(slaves)]
    maps = ["-map", "0:v:0", *audio, "-c:v", "copy"]
    argv += [*maps, *hls, playlist]
    # Safari's MSE takes H.265 only as hvc1 (parameter sets in the init segment)
    tag = ["-tag:v", "hvc1"] if media is not None and media.video_codec == "hevc" else []
    if live:
        argv += [*maps, *tag, *LIVE_OPTIONS, "pipe:1"]
    if record:
        argv += [*maps, *tag, *rec, pattern]
    return argv


def sub_argv(
    config: PodConfig,
    camera: CameraConfig,
    media: MediaInfo | None = None,
    encoder: H264Encoder = "libx264",
) -> list[str]:
    """The substream: its own RTSP session, the live fMP4 output only (no HLS), no audio
    (grid tiles are muted). Copied, or with ``transcode: h264`` encoded at its own size."""
    url = camera.sub_url
    if url is None:
        raise ValueError(f"camera {camera.camera_id} has no substream")
    head = _ffmpeg_head(config.ffmpeg_path)
    if camera.transcode == "h264":
        head += global_args(encoder)
        video = video_args(encoder, encode_for(camera, media, main=False))
    else:
        hevc = media is not None and media.video_codec == "hevc"
        video = ["-c:v", "copy", *(["-tag:v", "hvc1"] if hevc else [])]
    argv = [*head, *rtsp_input(url, config.rtsp_timeout), "-map", "0:v:0", "-an", *video]
    return [*argv, *LIVE_OPTIONS, "pipe:1"]


def media_probe_argv(
    ffprobe_path: str, camera: CameraConfig, timeout: float, url: str | None = None
) -> list[str]:
    """The camera's streams as JSON (codec, profile, size, frame rate, audio rate); ``url``:
    another stream of the camera (its substream), default its main stream."""
    return [
        ffprobe_path,
        "-v",
        "error",
        *rtsp_input(url or camera.url, timeout),
        "-show_entries",
        "stream=codec_type,codec_name,profile,width,height,avg_frame_rate,sample_rate",
        "-of",
        "json",
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
        *rtsp_input(camera.url, timeout),
        "-select_streams",
        "v:0",
        "-show_entries",
        "stream=codec_name,width,height",
        "-of",
        "csv=p=0",
    ]
