"""The agent's ``config.yaml``: the spec's flat single-camera keys or a ``cameras:`` list.

Unknown keys and bad values fail at start with a message naming the key; the messages never
contain the offending value (it may be a secret or an RTSP URL with a password).
"""

from __future__ import annotations

import ipaddress
import os
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from platebridge import __version__
from platebridge.core.heartbeat import DEFAULT_STREAM_PORT, Slug
from platebridge.pod.envexpand import EnvExpansionError, expand_tree

DEFAULT_HLS_DIR = Path("/run/platebridge-pod/hls")
DEFAULT_RECORDING_DIR = Path("/var/lib/platebridge/recordings")
FLAT_CAMERA_KEYS = ("camera_id", "camera_name", "camera_rtsp_url", "camera_position")
_FLAT_TARGETS = ("camera_id", "name", "rtsp_url", "position")

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class ConfigError(Exception):
    """The configuration is unusable; the message names the key(s) and never their values."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class CameraConfig(_Strict):
    camera_id: Slug = Field(description="Camera id, unique within the POD (e.g. gate-camera-1).")
    name: Name = Field(description="Human-readable camera name shown in the portal.")
    rtsp_url: SecretStr = Field(
        description="rtsp:// or rtsps:// URL of the camera; may embed credentials via ${ENV}."
    )
    position: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] = Field(
        default="", description="Where the camera is, e.g. 'main entrance'."
    )

    sub_rtsp_url: SecretStr | None = Field(
        default=None,
        description="The camera's substream (smaller picture), rtsp:// or rtsps://; the grid "
        "plays it. Opened only while someone watches it (its own RTSP session).",
    )
    transcode: Literal["off", "h264"] = Field(
        default="off",
        description="'h264': encode the video once to H.264 (low-latency, 1 s keyframes) "
        "for both outputs, e.g. for an H.265 camera browsers cannot play; costs CPU "
        "(docs/performance.md). 'off': stream copy.",
    )
    transcode_width: int | None = Field(
        default=None,
        ge=160,
        le=3840,
        description="With transcode: scale the main stream down to this width (aspect kept; "
        "never up). Unset: the camera's size.",
    )
    record: bool = Field(
        default=True,
        description="Record this camera continuously (docs/recording.md); false: live only.",
    )
    retention_days: int | None = Field(
        default=None,
        ge=1,
        le=3650,
        description="Keep this camera's footage this many days (unset: the POD's).",
    )
    transcode_bitrate: int | None = Field(
        default=None,
        ge=100,
        le=20000,
        description="With transcode: the encoder's bitrate cap in kbit/s. Unset: by the "
        "output height (360p 800, 480p 1200, 720p 2500, 1080p 4000, larger 8000).",
    )

    @field_validator("rtsp_url", "sub_rtsp_url")
    @classmethod
    def _rtsp(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        url = value.get_secret_value()
        try:
            parts = urlsplit(url)
            _ = parts.port
        except ValueError:
            raise ValueError("is not a valid URL") from None
        if parts.scheme not in ("rtsp", "rtsps") or not parts.hostname:
            raise ValueError("must be an rtsp:// or rtsps:// URL with a host")
        if len(url) > 2048 or any(c.isspace() for c in url):
            raise ValueError("must be a single URL without spaces, at most 2048 characters")
        return value

    @property
    def url(self) -> str:
        return self.rtsp_url.get_secret_value()

    @property
    def sub_url(self) -> str | None:
        return None if self.sub_rtsp_url is None else self.sub_rtsp_url.get_secret_value()


class PodConfig(_Strict):
    pod_id: Slug = Field(description="The POD's id as registered in the portal.")
    portal_url: str = Field(description="Base URL of the portal, e.g. https://portal.example.")
    api_key: SecretStr = Field(min_length=1, max_length=512, description="Pod API key (pbk_…).")
    stream_token_secret: SecretStr = Field(
        min_length=16, max_length=512, description="Shared secret the portal signs tokens with."
    )
    cameras: list[CameraConfig] = Field(min_length=1, max_length=64)
    listen_host: str = Field(default="0.0.0.0", description="Address the HTTP server binds.")
    listen_port: int = Field(default=DEFAULT_STREAM_PORT, ge=1, le=65535)
    advertise_address: str = Field(
        default="auto",
        description="'auto' (LAN IP of the default route), 'tailscale' or a literal IP.",
    )
    heartbeat_interval: float = Field(default=60, ge=1, le=3600)
    heartbeat_timeout: float = Field(default=10, gt=0, le=120)
    hls_dir: Path = Field(default=DEFAULT_HLS_DIR, description="Where HLS output is written.")
    recording_dir: Path = Field(
        default=DEFAULT_RECORDING_DIR,
        description="Where footage is recorded (<camera>/<YYYY-MM-DD>/<HHMMSS>.mp4, UTC) "
        "with its index (index.sqlite3).",
    )
    recording_file_seconds: int = Field(
        default=60, ge=10, le=600, description="Length of a recorded file, seconds."
    )
    retention_days: int = Field(
        default=30, ge=1, le=3650, description="Footage older than this many days is deleted."
    )
    retention_min_free_bytes: int = Field(
        default=2 * 1024**3,
        ge=0,
        description="Delete the oldest footage to keep at least this many bytes free.",
    )
    retention_min_free_percent: float = Field(
        default=10,
        ge=0,
        le=90,
        description="… and at least this percentage of the recording filesystem free.",
    )
    hls_segment_seconds: float = Field(default=1, ge=0.5, le=2)
    hls_list_size: int = Field(default=6, ge=3, le=30)
    rtsp_timeout: float = Field(default=5, ge=1, le=60, description="Seconds of RTSP silence.")
    restart_backoff_max: float = Field(default=30, ge=1, le=600)
    live_output: bool = Field(
        default=True,
        description="Second ffmpeg output: fragmented MP4 for the sub-second live view "
        "(GET /live/...); false: HLS only.",
    )
    substream_idle_seconds: float = Field(
        default=30,
        ge=1,
        le=3600,
        description="A substream's ffmpeg (and RTSP session) is stopped this many seconds "
        "after its last live viewer left.",
    )
    h264_encoder: Literal["auto", "libx264", "h264_vaapi", "h264_qsv", "h264_v4l2m2m"] = Field(
        default="auto",
        description="Encoder for cameras with transcode: h264. 'auto': a hardware encoder "
        "ffmpeg lists whose device exists (v4l2m2m: /dev/video11, VAAPI: /dev/dri/renderD128), "
        "else libx264; a hardware encoder that fails falls back to libx264.",
    )
    max_keyframe_interval: float = Field(
        default=20,
        ge=1,
        le=60,
        description="Longest keyframe interval (s) a camera may have: bounds the stall "
        "watchdog and the start timeout until the camera's own interval is measured.",
    )
    cors_origins: list[Annotated[str, StringConstraints(max_length=200)]] = Field(
        default_factory=list, max_length=20
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        min_length=16,
        max_length=512,
        description="Bearer token a scraper must send to read /metrics (docs/metrics.md).",
    )
    metrics_networks: list[Annotated[str, StringConstraints(max_length=64)]] = Field(
        default_factory=list,
        max_length=50,
        description="CIDRs of the client addresses that may read /metrics; with metrics_token "
        "too, both must hold. Neither set: /metrics answers 404.",
    )
    tls_cert: Path | None = None
    tls_key: Path | None = None
    portal_ca_file: Path | None = Field(
        default=None,
        description="PEM file of the CA that signs the portal's certificate (a private CA); "
        "unset: the usual public CAs. Used by the heartbeat, the tunnel and `check`.",
    )
    firmware_version: Annotated[str, StringConstraints(min_length=1, max_length=64)] = __version__
    ffmpeg_path: str = "ffmpeg"
    ffprobe_path: str = "ffprobe"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    tunnel: bool | Literal["auto"] = Field(
        default="auto",
        description="Outbound tunnel to the portal (Method 4: PODs behind NAT): 'auto' (or "
        "unset) follows the portal's heartbeat answer, true forces it on, false off.",
    )
    tunnel_ping_interval: float = Field(
        default=10, ge=1, le=300, description="Seconds between tunnel keep-alive pings."
    )
    tunnel_backoff_max: float = Field(
        default=30, ge=1, le=600, description="Cap of the tunnel reconnect back-off, seconds."
    )
    tunnel_read_timeout: float = Field(
        default=10, gt=0, le=120, description="Per-read timeout of tunnelled local requests."
    )

    @field_validator("tunnel", mode="before")
    @classmethod
    def _tunnel(cls, value: object) -> object:
        return "auto" if value is None else value  # ``tunnel:`` with no value

    @field_validator("portal_url")
    @classmethod
    def _portal(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL")
        if parts.username or parts.password or parts.query or parts.fragment:
            raise ValueError("must be a plain base URL (no credentials, query or fragment)")
        return value.rstrip("/")

    @field_validator("listen_host")
    @classmethod
    def _listen_host(cls, value: str) -> str:
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            raise ValueError("must be a literal IP address such as 0.0.0.0 or ::") from None

    @field_validator("advertise_address")
    @classmethod
    def _advertise(cls, value: str) -> str:
        if value in ("auto", "tailscale"):
            return value
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            raise ValueError("must be 'auto', 'tailscale' or a literal IP address") from None

    @field_validator("metrics_networks")
    @classmethod
    def _metrics_networks(cls, value: list[str]) -> list[str]:
        for net in value:
            try:
                ipaddress.ip_network(net.strip(), strict=False)
            except ValueError:
                raise ValueError(f"not a CIDR network: {net!r}") from None
        return [net.strip() for net in value]

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or not parts.hostname or parts.path:
                raise ValueError("each origin must look like https://portal.example (no path)")
        return value

    @field_validator("cameras")
    @classmethod
    def _unique(cls, value: list[CameraConfig]) -> list[CameraConfig]:
        ids = [c.camera_id for c in value]
        if len(ids) != len(set(ids)):
            raise ValueError("camera_id values must be unique")
        return value

    @model_validator(mode="after")
    def _tls_pair(self) -> PodConfig:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key must be given together")
        for path in (self.tls_cert, self.tls_key):
            if path is not None and not path.is_file():
                raise ValueError("tls_cert/tls_key must name existing files")
        if self.portal_ca_file is not None and not self.portal_ca_file.is_file():
            raise ValueError("portal_ca_file must name an existing PEM file")
        return self

    def portal_verify(self) -> ssl.SSLContext | bool:
        """How connections to the portal check its certificate (httpx's ``verify``)."""
        if self.portal_ca_file is None:
            return True
        return ssl.create_default_context(cafile=str(self.portal_ca_file))

    @property
    def secrets(self) -> list[str]:
        """Every secret value, for redacting free text (ffmpeg stderr, portal answers)."""
        values = [self.api_key.get_secret_value(), self.stream_token_secret.get_secret_value()]
        if self.metrics_token is not None:
            values.append(self.metrics_token.get_secret_value())
        for cam in self.cameras:
            for url in (cam.url, cam.sub_url):
                if url is not None:
                    parts = urlsplit(url)
                    values.extend(v for v in (parts.password,) if v)
        return values

    def camera(self, camera_id: str) -> CameraConfig | None:
        return next((c for c in self.cameras if c.camera_id == camera_id), None)


def _fold_flat_camera(raw: dict[str, Any]) -> dict[str, Any]:
    """Turn the spec's ``camera_id``/``camera_name``/… keys into the first ``cameras`` entry."""
    flat = {k: raw.pop(k) for k in FLAT_CAMERA_KEYS if k in raw}
    if not flat:
        return raw
    camera: dict[str, Any] = {}
    for key, target in zip(FLAT_CAMERA_KEYS, _FLAT_TARGETS, strict=True):
        if key in flat:
            camera[target] = flat[key]
    camera.setdefault("name", camera.get("camera_id"))
    listed = raw.get("cameras") or []
    if not isinstance(listed, list):
        return raw | {"cameras": listed}
    raw["cameras"] = [camera, *listed]
    return raw


def _location(loc: tuple[int | str, ...], flat: bool) -> str:
    names = {"name": "camera_name", "rtsp_url": "camera_rtsp_url", "position": "camera_position"}
    if flat and len(loc) >= 3 and loc[0] == "cameras" and loc[1] == 0:
        field = str(loc[2])
        return names.get(field, field)
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _format_errors(exc: ValidationError, flat: bool) -> str:
    lines = []
    for err in exc.errors(include_input=False, include_url=False):
        where = _location(tuple(err["loc"]), flat) or "<config>"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "missing":
            msg = "is required"
        lines.append(f"{where}: {msg}")
    return "; ".join(lines)


def parse_config(raw: object, env: Mapping[str, str] | None = None) -> PodConfig:
    """Validate a YAML tree (after ``${ENV}`` expansion) into a :class:`PodConfig`."""
    if not isinstance(raw, dict):
        raise ConfigError("config: must be a mapping of keys to values")
    try:
        expanded = expand_tree(raw, os.environ if env is None else env)
    except EnvExpansionError as exc:
        raise ConfigError(str(exc)) from None
    flat = any(k in expanded for k in FLAT_CAMERA_KEYS)
    try:
        return PodConfig.model_validate(_fold_flat_camera(dict(expanded)))
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, flat)) from None


def load_config(path: Path, env: Mapping[str, str] | None = None) -> PodConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: not valid YAML{where}") from None
    return parse_config(raw, env)
