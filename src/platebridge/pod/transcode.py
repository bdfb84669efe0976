"""H.264 transcoding (``transcode: h264``): the encoder choice and its ffmpeg options.

Pure functions of the config and the probe result, unit-tested without spawning
(tests/pod/test_transcode_argv.py). The only boundary is finding which encoders the POD has:
:func:`encoders_argv` is run once by the supervisor, its output read by
:func:`parse_encoders`, and :func:`select_h264_encoder` decides with the device nodes that
exist. Debian's ffmpeg lists ``h264_vaapi``, ``h264_qsv`` and ``h264_v4l2m2m`` on every
machine (they are compiled in), so a listing alone proves nothing: ``auto`` also needs the
encoder's device node. The hardware command lines follow ffmpeg's documentation and are
**untested on hardware** (this project's machines have none); libx264 is measured
(docs/performance.md, "Transcoding").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal

from platebridge.core.aio import within

log = logging.getLogger("platebridge.pod.camera")

H264Encoder = Literal["libx264", "h264_vaapi", "h264_qsv", "h264_v4l2m2m"]
EncoderChoice = Literal["auto", "libx264", "h264_vaapi", "h264_qsv", "h264_v4l2m2m"]

#: Forced keyframe spacing of the encoded stream (s): the live view's keyframe cache stays
#: small and HLS segments (cut at keyframes) stay 1 s long.
KEYFRAME_SECONDS = 1
#: The device node each hardware encoder needs; ``auto`` tries them in this order.
DEVICES: dict[H264Encoder, str] = {
    "h264_v4l2m2m": "/dev/video11",  # Raspberry Pi's bcm2835-codec encoder
    "h264_vaapi": "/dev/dri/renderD128",  # Intel / AMD GPUs
}
VAAPI_DEVICE = DEVICES["h264_vaapi"]
#: Bitrate caps (kbit/s) by output height, for ``transcode_bitrate`` unset.
BITRATES = ((360, 800), (480, 1200), (720, 2500), (1080, 4000))
LARGE_BITRATE = 8000
_ENCODER_LINE = re.compile(r"^\s*[VAS][A-Z.]{5}\s+(\S+)")


def encoders_argv(ffmpeg_path: str) -> list[str]:
    """The encoders this ffmpeg was built with (one per line, ``V....D name  description``)."""
    return [ffmpeg_path, "-hide_banner", "-nostdin", "-encoders"]


def parse_encoders(text: str) -> frozenset[str]:
    """Encoder names from :func:`encoders_argv`'s output (the legend lines do not match)."""
    names = set()
    for line in text.splitlines():
        match = _ENCODER_LINE.match(line)
        if match and not match.group(1).startswith("="):
            names.add(match.group(1))
    return frozenset(names)


def select_h264_encoder(
    choice: EncoderChoice, available: Collection[str], devices: Collection[str]
) -> H264Encoder:
    """The encoder to use: the configured one, or for ``auto`` the first hardware encoder
    that ffmpeg lists *and* whose device node exists (``devices``), else libx264."""
    if choice != "auto":
        return choice
    for name, device in DEVICES.items():
        if name in available and device in devices:
            return name
    return "libx264"


@dataclass(frozen=True)
class Encode:
    """What to encode: the picture's size (from the probe, None if unknown), a width to scale
    down to, a bitrate cap (kbit/s, None: by height) and the frame rate (for the GOP)."""

    width: int | None = None
    height: int | None = None
    scale_width: int | None = None
    bitrate: int | None = None
    fps: float | None = None

    def output_size(self) -> tuple[int | None, int | None]:
        """The encoded picture's size: scaled down to ``scale_width`` (never up), even height."""
        w, h, target = self.width, self.height, self.scale_width
        if target is None or w is None or h is None or target >= w:
            return (target if w is None else w), h
        return target, max(2, round(h * target / w / 2) * 2)

    def kbps(self) -> int:
        if self.bitrate is not None:
            return self.bitrate
        _, height = self.output_size()
        if height is None:
            return BITRATES[-1][1]
        return next((rate for limit, rate in BITRATES if height <= limit), LARGE_BITRATE)


def global_args(encoder: H264Encoder) -> list[str]:
    """Options before the input (the hardware device), empty for software encoders."""
    if encoder == "h264_vaapi":
        return ["-vaapi_device", VAAPI_DEVICE]
    return []


def video_args(encoder: H264Encoder, encode: Encode) -> list[str]:
    """Output options that encode the video once, low-latency: no B-frames, a keyframe every
    :data:`KEYFRAME_SECONDS` (forced by time, so a wrong probed fps does not matter), a
    bitrate cap with a one-second VBV, 8-bit 4:2:0 (what every browser decodes)."""
    rate = encode.kbps()
    filters = [f"scale='min({encode.scale_width},iw)':-2"] if encode.scale_width else []
    keys = ["-force_key_frames", f"expr:gte(t,n_forced*{KEYFRAME_SECONDS})"]
    if encode.fps:
        keys += ["-g", str(max(1, round(encode.fps * KEYFRAME_SECONDS * 2)))]
    caps = ["-b:v", f"{rate}k", "-maxrate", f"{rate}k", "-bufsize", f"{rate}k"]
    if encoder == "libx264":
        vf = ",".join([*filters, "format=yuv420p"])
        tune = ["-preset", "veryfast", "-tune", "zerolatency", "-profile:v", "high"]
        return ["-vf", vf, "-c:v", "libx264", *tune, *caps, *keys, "-sc_threshold", "0"]
    if encoder == "h264_vaapi":
        vf = ",".join([*filters, "format=nv12", "hwupload"])
        return ["-vf", vf, "-c:v", encoder, *caps, *keys, "-bf", "0"]
    if encoder == "h264_qsv":
        vf = ",".join([*filters, "format=nv12"])
        low = ["-preset", "veryfast", "-look_ahead", "0", "-async_depth", "1", "-bf", "0"]
        return ["-vf", vf, "-c:v", encoder, *low, *caps, *keys, "-forced_idr", "1"]
    vf = ",".join([*filters, "format=yuv420p"])  # h264_v4l2m2m
    return ["-vf", vf, "-c:v", encoder, *caps, *keys]


def tee_escape(value: str) -> str:
    """Escape an option value inside a tee slave's ``[k=v:…]`` list (``\\ ' :`` and the
    brackets); :func:`tee_slave` then escapes the whole slave for the ``|`` list."""
    return re.sub(r"([\\':\[\]|])", r"\\\1", value)


def tee_slave(options: list[str], target: str) -> str:
    """One tee slave from an output's ffmpeg options (``-f hls -hls_time 1 …``) and its
    target: ``[f=hls:hls_time=1:…]target``, escaped for the tee's ``|``-separated list."""
    pairs = []
    for name, value in zip(options[::2], options[1::2], strict=True):
        pairs.append(f"{name.removeprefix('-')}={tee_escape(value)}")
    slave = f"[{':'.join(pairs)}]{target}"
    return re.sub(r"([\\'|])", r"\\\1", slave)


#: ``ffmpeg -encoders`` per ffmpeg binary, asked once per agent.
_LISTED: dict[str, frozenset[str]] = {}
LIST_TIMEOUT = 10.0


async def choose_encoder(ffmpeg_path: str, choice: EncoderChoice) -> H264Encoder:
    """The one boundary: for ``auto``, run :func:`encoders_argv` (once per ffmpeg binary) and
    look for the device nodes, then :func:`select_h264_encoder`. A listing that fails is
    empty (libx264)."""
    if choice != "auto":
        return choice
    if ffmpeg_path not in _LISTED:
        _LISTED[ffmpeg_path] = await _list_encoders(ffmpeg_path)
    devices = await asyncio.to_thread(present_devices)
    return select_h264_encoder(choice, _LISTED[ffmpeg_path], devices)


def present_devices() -> list[str]:
    return [d for d in DEVICES.values() if os.path.exists(d)]


async def _list_encoders(ffmpeg_path: str) -> frozenset[str]:
    try:
        proc = await asyncio.create_subprocess_exec(
            *encoders_argv(ffmpeg_path),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
    except OSError:
        return frozenset()
    try:
        out, _ = await within(proc.communicate(), LIST_TIMEOUT)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        log.warning("ffmpeg -encoders did not answer: transcoding with libx264")
        return frozenset()
    return parse_encoders(out.decode(errors="replace"))
