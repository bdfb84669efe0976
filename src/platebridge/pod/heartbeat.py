"""Heartbeat: tell the portal every ``heartbeat_interval`` seconds where we are and what we serve.

Failures never stop the agent: retries use exponential back-off with full jitter, capped at
the interval; logs say whether the key was refused or the portal could not be reached.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

import httpx
from pydantic import ValidationError

from platebridge.core.aio import within
from platebridge.core.heartbeat import (
    HEARTBEAT_PATH,
    CameraMedia,
    HeartbeatCamera,
    HeartbeatRequest,
    HeartbeatResponse,
)
from platebridge.core.http_client import new_async_client
from platebridge.core.redact import redact_text, strip_credentials
from platebridge.pod.address import resolve_advertise_address
from platebridge.pod.backoff import full_jitter
from platebridge.pod.config import CameraConfig, PodConfig
from platebridge.pod.ffmpeg import AUDIO_COPY, AUDIO_TO_AAC
from platebridge.pod.recording.recorder import Recording
from platebridge.pod.supervisor import CameraState

log = logging.getLogger("platebridge.pod.heartbeat")

Outcome = Literal["ok", "refused", "rejected", "server_error", "network"]
RETRY_BASE = 1.0
#: Extra heartbeats triggered by camera status changes are spaced at least this far apart.
MIN_SPACING = 1.0

_WIRE_STATUS = {"starting": "inactive", "active": "active", "error": "error"}
#: Measured keyframe intervals are reported in steps of this many seconds (a stable digest).
KEYFRAME_STEP = 0.5
#: codecs-string prefixes of each ffprobe video codec (to tell a transcoded live output).
_CODEC_TAGS = {"h264": ("avc1", "avc3"), "hevc": ("hvc1", "hev1")}


def _audio_handling(codec: str | None) -> str:
    if codec is None:
        return "none"
    if codec in AUDIO_COPY:
        return "aac"
    return "converted" if codec in AUDIO_TO_AAC else "dropped"


def camera_media(camera: CameraConfig, state: CameraState | None) -> CameraMedia | None:
    """What the camera sends: the last probe, the live output's codecs and its measured
    keyframe interval and bitrate, rounded so that an unchanged camera reports the same values
    at every beat (docs/live.md, "Heartbeat media"). None when nothing is known yet. Values
    that do not fit the wire model are left out, never a failed heartbeat."""
    if state is None:
        return None
    probe, live = state.media, state.live
    codecs = live.codecs if live is not None and live.fanout.ready else None
    values: dict[str, object] = {}
    if probe is not None:
        values |= {
            "video_codec": probe.video_codec,
            "video_profile": probe.video_profile,
            "width": probe.width,
            "height": probe.height,
            "fps": round(probe.fps, 2) if probe.fps else None,
            "audio_codec": probe.audio_codec,
            "audio": _audio_handling(probe.audio_codec),
        }
    if live is not None:
        interval = live.keyframe_interval
        if interval is not None:
            values["keyframe_interval"] = max(
                KEYFRAME_STEP, round(interval / KEYFRAME_STEP) * KEYFRAME_STEP
            )
        values["bitrate_kbps"] = live.bitrate_kbps()
    values["codecs"] = codecs or None
    values["note"] = state.note[:200] if state.note else None
    values["transcoded"] = _transcoded(camera, probe.video_codec if probe else None, codecs)
    values = {k: v for k, v in values.items() if v is not None}
    if not set(values) - {"transcoded"}:
        return None
    for _ in range(2):
        try:
            return CameraMedia.model_validate(values)
        except ValidationError as exc:  # drop what does not fit (a camera's odd profile name)
            bad = {str(e["loc"][0]) for e in exc.errors() if e["loc"]}
            values = {k: v for k, v in values.items() if k not in bad}
    return None


def _transcoded(camera: CameraConfig, probed: str | None, codecs: str | None) -> bool:
    """Configured (``transcode: h264``) or seen: the live output's video is not the codec the
    camera sends."""
    if camera.transcode == "h264":
        return True
    tags = _CODEC_TAGS.get(probed or "")
    if not tags or not codecs:
        return False
    return not codecs.split(",")[0].startswith(tags)


def build_payload(
    config: PodConfig,
    states: Mapping[str, CameraState] | None = None,
    recording: Recording | None = None,
) -> HeartbeatRequest:
    """The spec's payload plus ``stream_port`` and per-camera status; RTSP URLs stripped;
    with ``recording``, each camera's recording and the POD's disk."""
    cameras = []
    for cam in config.cameras:
        state = (states or {}).get(cam.camera_id)
        recorder = recording.recorder(cam.camera_id) if recording else None
        cameras.append(
            HeartbeatCamera(
                camera_id=cam.camera_id,
                name=cam.name,
                rtsp_url=strip_credentials(cam.url),
                position=cam.position,
                status=_WIRE_STATUS[state.status] if state else "active",
                error=(state.error[:500] if state and state.error else None),
                media=camera_media(cam, state),
                sub_media=camera_media(cam, state.sub) if state else None,
                recording=recorder.heartbeat() if recorder else None,
            )
        )
    return HeartbeatRequest(
        pod_id=config.pod_id,
        ip_address=resolve_advertise_address(config.advertise_address),
        firmware_version=config.firmware_version,
        status="online",
        stream_port=config.listen_port,
        cameras=cameras,
        disk=recording.heartbeat_disk() if recording else None,
    )


@dataclass(frozen=True)
class HeartbeatResult:
    outcome: Outcome
    message: str
    status_code: int | None = None
    #: The portal's ``tunnel`` answer; None when absent (an older portal) or unreadable.
    tunnel: bool | None = None


async def send_heartbeat(
    client: httpx.AsyncClient, config: PodConfig, payload: HeartbeatRequest
) -> HeartbeatResult:
    url = config.portal_url + HEARTBEAT_PATH
    headers = {"Authorization": f"Bearer {config.api_key.get_secret_value()}"}
    try:
        resp = await client.post(
            url, json=payload.model_dump(mode="json", exclude_none=True), headers=headers
        )
    except httpx.HTTPError as exc:
        return HeartbeatResult("network", f"portal unreachable: {type(exc).__name__}")
    body = redact_text(resp.text[:300].replace("\n", " "), config.secrets)
    code = resp.status_code
    if code in (401, 403):
        return HeartbeatResult("refused", f"portal refused the API key (HTTP {code})", code)
    if code >= 500:
        return HeartbeatResult("server_error", f"portal error (HTTP {code}): {body}", code)
    if code >= 300:
        return HeartbeatResult(
            "rejected", f"portal rejected the heartbeat (HTTP {code}): {body}", code
        )
    return HeartbeatResult("ok", f"heartbeat accepted (HTTP {code})", code, _tunnel(resp))


def _tunnel(resp: httpx.Response) -> bool | None:
    try:
        return HeartbeatResponse.model_validate_json(resp.content).tunnel
    except ValueError:
        return None


class HeartbeatLoop:
    def __init__(
        self,
        config: PodConfig,
        states: Mapping[str, CameraState],
        on_result: Callable[[HeartbeatResult], None] | None = None,
        recording: Recording | None = None,
    ) -> None:
        self.config = config
        self.states = states
        self.recording = recording
        self.on_result = on_result
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self.last: HeartbeatResult | None = None

    def poke(self) -> None:
        """A camera changed status: send a heartbeat soon instead of at the next interval."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    async def run(self) -> None:
        cfg = self.config
        failures = 0
        async with new_async_client(
            timeout=cfg.heartbeat_timeout, component="pod", verify=cfg.portal_verify()
        ) as client:
            while not self._stop.is_set():
                self._wake.clear()
                payload = build_payload(cfg, self.states, self.recording)
                result = await send_heartbeat(client, cfg, payload)
                self._log(result, failures)
                self.last = result
                if self.on_result is not None:
                    self.on_result(result)
                if result.outcome == "ok":
                    failures = 0
                    delay = cfg.heartbeat_interval
                else:
                    delay = max(0.2, full_jitter(failures, RETRY_BASE, cfg.heartbeat_interval))
                    failures += 1
                await self._sleep(delay)

    async def _sleep(self, delay: float) -> None:
        with contextlib.suppress(TimeoutError):
            await within(self._wake.wait(), delay)
        if not self._stop.is_set() and self._wake.is_set():
            with contextlib.suppress(TimeoutError):
                await within(self._stop.wait(), MIN_SPACING)

    def _log(self, result: HeartbeatResult, failures: int) -> None:
        if result.outcome == "ok":
            if failures:
                log.info("heartbeat: portal reachable again, %s", result.message)
            elif self.last is None or self.last.outcome != "ok":
                log.info("heartbeat: %s", result.message)
            else:
                log.debug("heartbeat: %s", result.message)
        elif result.outcome == "refused":
            log.error("heartbeat: %s; check api_key in the config", result.message)
        else:
            log.warning("heartbeat failed (attempt %d): %s", failures + 1, result.message)
