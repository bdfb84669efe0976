"""Wire models of ``POST /api/pod/heartbeat`` (spec: "POD Startup & Registration").

The POD builds :class:`HeartbeatRequest`, the portal validates it with the same class, so the
two can never disagree about a field. Unknown fields are ignored (a newer POD may send more),
everything else is bounded.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

MAX_CAMERAS = 64
DEFAULT_STREAM_PORT = 8000
HEARTBEAT_PATH = "/api/pod/heartbeat"

#: Ids as the spec shows them: ``main-gate-pod``, ``gate-camera-1``.
Slug = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
    ),
]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
Version = Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]

PodReportedStatus = Literal["online", "offline", "error"]
CameraReportedStatus = Literal["active", "error", "inactive"]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", str_max_length=4096)


CodecName = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=32, pattern=r"^[A-Za-z0-9._-]+$")
]
#: ffprobe profile names: "High", "Constrained Baseline", "High 4:2:2", "Main 10".
ProfileName = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=64, pattern=r"^[A-Za-z0-9 .:_+-]+$")
]
#: RFC 6381 ``codecs`` as the live output's init segment gives it: ``avc1.640028,mp4a.40.2``.
#: Only letters, digits, dots and commas: it ends up in an HTML attribute and in the MIME type
#: a browser's ``MediaSource.isTypeSupported`` is asked about.
CodecsString = Annotated[
    str,
    StringConstraints(
        max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9.]*(,[A-Za-z0-9][A-Za-z0-9.]*)*$"
    ),
]
AudioHandling = Literal["aac", "converted", "dropped", "none"]


class CameraMedia(_Wire):
    """What a camera sends, as the POD found it (probe before each ffmpeg start, and measured
    on the live output). Every field is optional: a value the POD does not know is left out.

    Values that are measured (``keyframe_interval``, ``bitrate_kbps``) are rounded by the POD
    (0.5 s; 2 significant digits with hysteresis) so that an unchanged camera gives the same
    heartbeat content beat after beat (the portal's digest fast path)."""

    video_codec: CodecName | None = Field(default=None, description="ffprobe name: h264, hevc.")
    video_profile: ProfileName | None = Field(default=None, description="e.g. 'High', 'Main'.")
    width: int | None = Field(default=None, ge=1, le=16384)
    height: int | None = Field(default=None, ge=1, le=16384)
    fps: float | None = Field(default=None, gt=0, le=1000, description="Frames per second.")
    keyframe_interval: float | None = Field(
        default=None, ge=0, le=600, description="Seconds between keyframes, measured."
    )
    bitrate_kbps: int | None = Field(
        default=None, ge=0, le=1_000_000, description="Measured bitrate of the live output."
    )
    audio_codec: CodecName | None = Field(default=None, description="ffprobe name: aac, pcm_alaw.")
    audio: AudioHandling | None = Field(
        default=None,
        description="What the POD does with the audio: passes AAC, converts G.711 to AAC, drops "
        "any other codec; 'none' when the camera sends no audio.",
    )
    note: ShortText | None = Field(default=None, description="e.g. 'audio … dropped'.")
    codecs: CodecsString | None = Field(
        default=None, description="RFC 6381 codecs of the live output, e.g. 'avc1.640028'."
    )
    transcoded: bool = Field(default=False, description="Video re-encoded by the POD (H.264).")


RecordingState = Literal["recording", "off", "error", "disk_full"]


class CameraRecording(_Wire):
    """The camera's recording on the POD (docs/recording.md). Coarse on purpose, so the
    heartbeat digest stays the same beat after beat: times to the minute, bytes to 2
    significant digits."""

    enabled: bool = Field(description="Recording is configured on (record: true).")
    state: RecordingState = Field(description="What the POD is doing now.")
    oldest: float | None = Field(default=None, ge=0, description="Epoch s, oldest footage.")
    newest: float | None = Field(default=None, ge=0, description="Epoch s, newest (minute).")
    bytes: int = Field(default=0, ge=0, description="Bytes of footage on disk.")
    gaps_24h: int = Field(default=0, ge=0, le=100_000, description="Gaps in the last 24 h.")


class PodDisk(_Wire):
    total: int = Field(ge=0, description="Bytes of the recording filesystem.")
    free: int = Field(ge=0, description="Bytes free on it (2 significant digits).")


class HeartbeatCamera(_Wire):
    camera_id: Slug = Field(description="Camera id, unique within the POD.")
    name: Name = Field(description="Human-readable camera name.")
    rtsp_url: Annotated[str, StringConstraints(max_length=2048)] | None = Field(
        default=None,
        description="The camera's RTSP URL. The portal keeps it without credentials, never "
        "returns it.",
    )
    position: ShortText = Field(default="", description="Where the camera is: 'main entrance'.")
    status: CameraReportedStatus = Field(
        default="active", description="The POD's view of the camera stream."
    )
    error: Annotated[str, StringConstraints(max_length=500)] | None = Field(
        default=None, description="Short reason when status is 'error' (credentials redacted)."
    )
    media: CameraMedia | None = Field(
        default=None, description="What the camera sends (additive; older PODs leave it out)."
    )
    sub_media: CameraMedia | None = Field(
        default=None, description="The same for the camera's substream, when it has one."
    )
    recording: CameraRecording | None = Field(
        default=None, description="Recording state and footage (additive; older PODs omit it)."
    )


class HeartbeatRequest(_Wire):
    pod_id: Slug = Field(description="The POD's id, e.g. 'main-gate-pod'.")
    ip_address: str | None = Field(
        default=None,
        max_length=45,
        description="The address the portal should reach the POD on (LAN, public or VPN).",
    )
    firmware_version: Version | None = None
    status: PodReportedStatus = "online"
    stream_port: int = Field(default=DEFAULT_STREAM_PORT, ge=1, le=65535)
    cameras: list[HeartbeatCamera] | None = Field(
        default=None,
        max_length=MAX_CAMERAS,
        description="Every camera the POD serves. Omitted: the camera list is left as it is.",
    )
    disk: PodDisk | None = Field(
        default=None, description="The recording filesystem (additive; older PODs omit it)."
    )

    @field_validator("ip_address")
    @classmethod
    def _literal_ip(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return str(ipaddress.ip_address(value.strip()))
        except ValueError:
            raise ValueError("must be a literal IPv4 or IPv6 address") from None

    @field_validator("cameras")
    @classmethod
    def _unique_camera_ids(
        cls, value: list[HeartbeatCamera] | None
    ) -> list[HeartbeatCamera] | None:
        if value is not None:
            ids = [c.camera_id for c in value]
            if len(ids) != len(set(ids)):
                raise ValueError("camera_id values must be unique")
        return value


class HeartbeatResponse(_Wire):
    ok: bool
    pod_id: str
    server_time: datetime
    heartbeat_interval: int
    registered: bool = Field(default=False, description="True when this heartbeat created the pod.")
    tunnel: bool | None = Field(
        default=None,
        description="Whether the POD should hold its outbound tunnel (stream mode 'tunnel' or "
        "'auto'). Absent from older portals: the POD then keeps its own default.",
    )


#: Stream modes in which the portal wants the POD to keep a tunnel open.
TUNNEL_MODES = frozenset({"tunnel", "auto"})


def wants_tunnel(stream_mode: str) -> bool:
    return stream_mode in TUNNEL_MODES
