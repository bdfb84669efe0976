"""Heartbeat payload and how portal answers are classified (real ASGI portal stand-in)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from platebridge.core.heartbeat import HEARTBEAT_PATH, HeartbeatRequest
from platebridge.pod.config import PodConfig, parse_config
from platebridge.pod.heartbeat import build_payload, send_heartbeat
from platebridge.pod.supervisor import CameraState


def make_config(**extra: object) -> PodConfig:
    raw: dict[str, Any] = {
        "pod_id": "main-gate-pod",
        "portal_url": "http://portal",
        "api_key": "pbk_secretkey42",
        "stream_token_secret": "x" * 20,
        "camera_id": "gate-camera-1",
        "camera_name": "Main Gate Camera",
        "camera_rtsp_url": "rtsp://admin:campw99@192.168.1.50:554/stream",
        "camera_position": "main entrance",
        "advertise_address": "192.168.1.100",
        "listen_port": 8443,
    }
    raw.update(extra)
    return parse_config(raw, env={})


def test_payload_matches_spec_plus_status_and_port() -> None:
    cfg = make_config()
    states = {"gate-camera-1": CameraState("gate-camera-1", "Main Gate Camera", "error", "boom")}
    payload = build_payload(cfg, states)
    data = payload.model_dump(mode="json", exclude_none=True)
    assert data["pod_id"] == "main-gate-pod" and data["ip_address"] == "192.168.1.100"
    assert data["status"] == "online" and data["stream_port"] == 8443
    assert data["cameras"] == [
        {
            "camera_id": "gate-camera-1",
            "name": "Main Gate Camera",
            "rtsp_url": "rtsp://192.168.1.50:554/stream",
            "position": "main entrance",
            "status": "error",
            "error": "boom",
        }
    ]
    assert "campw99" not in payload.model_dump_json()
    HeartbeatRequest.model_validate(data)  # the portal's own model accepts it


def test_starting_camera_is_reported_inactive() -> None:
    states = {"gate-camera-1": CameraState("gate-camera-1", "G")}
    assert build_payload(make_config(), states).cameras[0].status == "inactive"  # type: ignore[index]


class Portal:
    """A stand-in portal answering with a configurable status; records what it receives."""

    def __init__(self) -> None:
        self.status = 200
        self.received: list[tuple[str | None, dict[str, Any]]] = []
        self.app = FastAPI()

        @self.app.post(HEARTBEAT_PATH)
        async def heartbeat(request: Request) -> JSONResponse:
            self.received.append((request.headers.get("authorization"), await request.json()))
            return JSONResponse({"ok": self.status == 200, "pbk": "pbk_secretkey42"}, self.status)


@pytest.fixture
async def portal() -> AsyncIterator[tuple[Portal, httpx.AsyncClient]]:
    p = Portal()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=p.app)) as client:
        yield p, client


@pytest.mark.parametrize(
    ("status", "outcome", "words"),
    [
        (200, "ok", "accepted"),
        (401, "refused", "refused the API key"),
        (403, "refused", "refused the API key"),
        (422, "rejected", "rejected the heartbeat"),
        (503, "server_error", "portal error"),
    ],
)
async def test_outcomes(
    portal: tuple[Portal, httpx.AsyncClient], status: int, outcome: str, words: str
) -> None:
    fake, client = portal
    fake.status = status
    cfg = make_config()
    result = await send_heartbeat(client, cfg, build_payload(cfg))
    assert result.outcome == outcome and words in result.message
    assert "pbk_secretkey42" not in result.message
    auth, body = fake.received[-1]
    assert auth == "Bearer pbk_secretkey42" and body["pod_id"] == "main-gate-pod"


async def test_network_failure_is_its_own_outcome() -> None:
    cfg = make_config(portal_url="http://127.0.0.1:9")
    async with httpx.AsyncClient(timeout=2) as client:
        result = await send_heartbeat(client, cfg, build_payload(cfg))
    assert result.outcome == "network" and "unreachable" in result.message
