"""The ready-to-use POD ``config.yaml`` printed once by ``pod create``."""

from __future__ import annotations

from typing import Any

import yaml


def pod_config(
    pod_id: str, portal_url: str, api_key: str, stream_token_secret: str
) -> dict[str, Any]:
    return {
        "pod_id": pod_id,
        "portal_url": portal_url,
        "api_key": api_key,
        "stream_token_secret": stream_token_secret,
        "cameras": [
            {
                "camera_id": "gate-camera-1",
                "name": "Main Gate Camera",
                "rtsp_url": "rtsp://USER:PASSWORD@192.168.1.50:554/stream",
                "position": "main entrance",
            }
        ],
    }


def render_pod_config(pod_id: str, portal_url: str, api_key: str, stream_token_secret: str) -> str:
    head = (
        f"# PlateBridge POD configuration for {pod_id}.\n"
        "# Contains this POD's API key and stream secret: keep it readable by the POD agent only.\n"
        "# Replace the camera placeholder with your camera(s).\n"
    )
    body = yaml.safe_dump(
        pod_config(pod_id, portal_url, api_key, stream_token_secret), sort_keys=False
    )
    return head + body
