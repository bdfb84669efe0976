"""Test data for the POD side: agent configs (dicts and the YAML file) and stream tokens minted
with the real ``core.tokens`` functions.

``pod_config`` is the one POD config every agent-starting test begins from; pass ``tenant=`` (a
seeded company) to use its pod id, API key and stream secret instead of the fixed test ones,
and keyword overrides for anything else::

    config = pod_config(tmp, camera.url, tenant=seeded, portal_url=base, heartbeat_interval=2)
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from platebridge.core.tokens import StreamClaims, sign_stream_token
from tests.support.portal import SeededCompany
from tests.support.procs import free_port

SECRET = "pod-stream-secret-for-tests-0123456789"
POD_ID = "main-gate-pod"
API_KEY = "pbk_test_0123456789abcdef"
CAMERA_ID = "gate-camera-1"


def pod_config(
    tmp: Path, rtsp_url: str, *, tenant: SeededCompany | None = None, **overrides: Any
) -> dict[str, Any]:
    """One camera (``gate-camera-1``) on a free loopback port, 1 s heartbeats and segments,
    HLS under ``tmp/hls``, recordings under ``tmp/recordings``; the portal URL points where
    nothing listens unless overridden."""
    config: dict[str, Any] = {
        "pod_id": tenant.pod_id if tenant else POD_ID,
        "portal_url": f"http://127.0.0.1:{free_port()}",  # nothing listens there
        "api_key": tenant.api_key if tenant else API_KEY,
        "stream_token_secret": tenant.stream_token_secret if tenant else SECRET,
        "camera_id": CAMERA_ID,
        "camera_name": "Main Gate Camera",
        "camera_rtsp_url": rtsp_url,
        "camera_position": "main entrance",
        "listen_host": "127.0.0.1",
        "listen_port": free_port(),
        "advertise_address": "127.0.0.1",
        "heartbeat_interval": 1,
        "hls_dir": str(tmp / "hls"),
        "recording_dir": str(tmp / "recordings"),
        "hls_segment_seconds": 1,
        "rtsp_timeout": 3,
    }
    config.update(overrides)
    return config


def write_pod_config(directory: Path, config: Mapping[str, Any]) -> Path:
    """Write ``config`` as the agent's YAML under a fresh name in ``directory``."""
    path = directory / f"pod-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump(dict(config)))
    return path


def stream_token(
    camera_id: str = CAMERA_ID,
    *,
    pod_id: str = POD_ID,
    secret: str = SECRET,
    user_id: str = "user-1",
    exp_in: int = 6 * 3600,  # parametrize builds tokens at collection: outlive a long suite
    iat: int | None = None,
) -> str:
    """A viewer's stream token as the portal signs it (``exp_in`` < 0: already expired)."""
    claims = StreamClaims(user_id, pod_id, camera_id, int(time.time()) + exp_in, iat=iat)
    return sign_stream_token(claims, secret)


def footage_token(
    camera_id: str = CAMERA_ID,
    *,
    start: int,
    end: int,
    pod_id: str = POD_ID,
    secret: str = SECRET,
    user_id: str = "user-1",
    exp_in: int = 6 * 3600,
) -> str:
    """A recorded-footage token for ``[start, end]`` (epoch s), as the portal signs it."""
    exp = int(time.time()) + exp_in
    claims = StreamClaims(user_id, pod_id, camera_id, exp, scope="footage", start=start, end=end)
    return sign_stream_token(claims, secret)
