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

from platebridge.core.heartbeat import (
    HEARTBEAT_PATH,
    HeartbeatCamera,
    HeartbeatRequest,
    HeartbeatResponse,
)
from platebridge.core.http_client import new_async_client
from platebridge.core.redact import redact_text, strip_credentials
from platebridge.pod.address import resolve_advertise_address
from platebridge.pod.backoff import full_jitter
from platebridge.pod.config import PodConfig
from platebridge.pod.supervisor import CameraState

log = logging.getLogger("platebridge.pod.heartbeat")

Outcome = Literal["ok", "refused", "rejected", "server_error", "network"]
RETRY_BASE = 1.0
#: Extra heartbeats triggered by camera status changes are spaced at least this far apart.
MIN_SPACING = 1.0

_WIRE_STATUS = {"starting": "inactive", "active": "active", "error": "error"}


def build_payload(
    config: PodConfig, states: Mapping[str, CameraState] | None = None
) -> HeartbeatRequest:
    """The spec's payload plus ``stream_port`` and per-camera status; RTSP URLs stripped."""
    cameras = []
    for cam in config.cameras:
        state = (states or {}).get(cam.camera_id)
        cameras.append(
            HeartbeatCamera(
                camera_id=cam.camera_id,
                name=cam.name,
                rtsp_url=strip_credentials(cam.url),
                position=cam.position,
                status=_WIRE_STATUS[state.status] if state else "active",
                error=(state.error[:500] if state and state.error else None),
            )
        )
    return HeartbeatRequest(
        pod_id=config.pod_id,
        ip_address=resolve_advertise_address(config.advertise_address),
        firmware_version=config.firmware_version,
        status="online",
        stream_port=config.listen_port,
        cameras=cameras,
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
    ) -> None:
        self.config = config
        self.states = states
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
                result = await send_heartbeat(client, cfg, build_payload(cfg, self.states))
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
            await asyncio.wait_for(self._wake.wait(), delay)
        if not self._stop.is_set() and self._wake.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), MIN_SPACING)

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
