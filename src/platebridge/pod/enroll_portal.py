"""What ``platebridge-pod enroll`` asks the portal: one heartbeat, then the pod's stream secret.

Every answer becomes a :class:`PortalAnswer` whose ``detail`` is safe to print (the key, the
stream secret and camera passwords redacted); the fetched secret itself travels only in
``PortalAnswer.stream_secret``, which nothing prints.
"""

from __future__ import annotations

import os
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx

from platebridge.core.enroll import ENROLL_PATH, EnrollResponse
from platebridge.core.heartbeat import HEARTBEAT_PATH, HeartbeatResponse
from platebridge.core.http_client import new_async_client
from platebridge.core.redact import redact_text
from platebridge.pod.check import CheckLine
from platebridge.pod.config import PodConfig
from platebridge.pod.heartbeat import build_payload
from platebridge.pod.supervisor import CameraState


@dataclass(frozen=True)
class PortalAnswer:
    ok: bool
    detail: str
    registered: bool = False
    #: The stream secret the portal handed out (``fetch_stream_secret`` only); never printed.
    stream_secret: str | None = field(default=None, repr=False)


def _network_reason(exc: httpx.HTTPError, timeout: float) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer within {timeout:g} s ({type(exc).__name__})"
    seen: set[int] = set()
    os_error = ""
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS certificate not accepted: {cause.verify_message or cause.reason}"
        if isinstance(cause, ssl.SSLError):
            return f"TLS error: {cause.reason or cause}"
        if isinstance(cause, socket.gaierror):
            return f"host name not resolved ({cause.strerror})"
        if isinstance(cause, OSError) and isinstance(cause.errno, int) and cause.errno > 0:
            os_error = os.strerror(cause.errno)  # "Connection refused", "No route to host"
        cause = cause.__cause__ or cause.__context__
    return os_error or str(exc) or type(exc).__name__


def _error_detail(resp: httpx.Response) -> tuple[str, str]:
    try:
        body = resp.json()
    except ValueError:
        return "", resp.text[:200].replace("\n", " ")
    if not isinstance(body, dict):
        return "", str(body)[:200]
    detail = body.get("detail", "")
    if isinstance(detail, list):
        detail = "; ".join(
            f"{d.get('field')}: {d.get('message')}" for d in detail if isinstance(d, dict)
        )
    return str(body.get("error", "")), str(detail)[:300]


def _judge(config: PodConfig, resp: httpx.Response) -> PortalAnswer:
    code = resp.status_code
    error, detail = _error_detail(resp)
    detail = redact_text(detail, config.secrets)
    if code == 401:
        return PortalAnswer(False, "the portal refused the key (unknown or revoked)")
    if code == 403 and error == "pod_mismatch":
        return PortalAnswer(
            False,
            f"the key belongs to another pod than {config.pod_id!r}: pass --pod-id with the "
            "pod's id as the portal shows it",
        )
    if 300 <= code < 400:
        where = redact_text(resp.headers.get("location", "?"), config.secrets)
        return PortalAnswer(False, f"the portal redirects (HTTP {code}) to {where}: use that URL")
    if code >= 300:
        what = f"HTTP {code}{' ' + error if error else ''}"
        return PortalAnswer(False, f"the portal refused the heartbeat ({what}): {detail}")
    try:
        answer = HeartbeatResponse.model_validate_json(resp.content)
    except ValueError:
        return PortalAnswer(False, f"HTTP {code}, but not a PlateBridge portal's answer")
    if not answer.ok:
        return PortalAnswer(False, f"the portal answered ok=false (HTTP {code})")
    return PortalAnswer(True, "reachable, key accepted", answer.registered)


async def send_one_heartbeat(
    config: PodConfig, cameras: Sequence[CheckLine], verify: ssl.SSLContext | bool = True
) -> PortalAnswer:
    """One real heartbeat, the probe results as camera statuses (as ``check`` sends them)."""
    states = {
        cam.camera_id: CameraState(
            cam.camera_id,
            cam.name,
            "active" if line.ok else "error",
            None if line.ok else line.detail,
        )
        for cam, line in zip(config.cameras, cameras, strict=True)
    }
    payload = build_payload(config, states)
    headers = {"Authorization": f"Bearer {config.api_key.get_secret_value()}"}
    timeout = config.heartbeat_timeout
    try:
        async with new_async_client(timeout=timeout, component="pod", verify=verify) as client:
            resp = await client.post(
                config.portal_url + HEARTBEAT_PATH,
                json=payload.model_dump(mode="json", exclude_none=True),
                headers=headers,
            )
    except httpx.HTTPError as exc:
        reason = redact_text(_network_reason(exc, timeout), config.secrets)
        return PortalAnswer(False, f"cannot reach the portal at {config.portal_url}: {reason}")
    return _judge(config, resp)


async def fetch_stream_secret(
    config: PodConfig, verify: ssl.SSLContext | bool = True
) -> PortalAnswer:
    """``POST /api/pod/enroll``: the pod's stream secret, after the heartbeat was accepted (a
    pod registered by a site enrollment key exists only from that heartbeat on)."""
    headers = {"Authorization": f"Bearer {config.api_key.get_secret_value()}"}
    timeout = config.heartbeat_timeout
    try:
        async with new_async_client(timeout=timeout, component="pod", verify=verify) as client:
            resp = await client.post(
                config.portal_url + ENROLL_PATH, json={"pod_id": config.pod_id}, headers=headers
            )
    except httpx.HTTPError as exc:
        reason = redact_text(_network_reason(exc, timeout), config.secrets)
        return PortalAnswer(False, f"cannot reach the portal at {config.portal_url}: {reason}")
    code = resp.status_code
    if code == 401:
        return PortalAnswer(False, "the portal refused the key (unknown or revoked)")
    if code == 404 or code == 405:
        error, _ = _error_detail(resp)
        if error != "pod_not_registered":  # the route itself is missing: an older portal
            return PortalAnswer(False, "this portal does not hand out stream secrets (older)")
    if code != 200:
        error, detail = _error_detail(resp)
        detail = redact_text(detail, config.secrets)
        what = f"HTTP {code}{' ' + error if error else ''}"
        return PortalAnswer(False, f"the portal refused the stream secret ({what}): {detail}")
    try:
        answer = EnrollResponse.model_validate_json(resp.content)
    except ValueError:
        return PortalAnswer(False, f"HTTP {code}, but not a PlateBridge portal's answer")
    if answer.pod_id != config.pod_id:
        return PortalAnswer(False, f"the portal answered for another pod ({answer.pod_id!r})")
    return PortalAnswer(True, "from the portal", stream_secret=answer.stream_token_secret)
