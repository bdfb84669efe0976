"""``GET /metrics`` of the POD agent, in-process: off by default, protected, per-camera gauges."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from platebridge.pod.config import ConfigError
from platebridge.pod.ffmpeg import MediaInfo
from platebridge.pod.http import create_app
from platebridge.pod.live import CameraLive
from platebridge.pod.supervisor import CameraState
from tests.pod.test_http_routes import make_config

TOKEN = "pod-metrics-token-0123456789"


def samples(text: str) -> dict[tuple[str, str], float]:
    """(sample name, camera or dir label) → value."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, s.labels.get("camera") or s.labels.get("dir") or "")] = float(s.value)
    return out


def client_for(tmp: Path, client_ip: str = "127.0.0.1", **extra: object) -> httpx.AsyncClient:
    (tmp / "rec").mkdir(exist_ok=True)
    config = make_config(tmp, recording_dir=str(tmp / "rec"), **extra)
    states = {c.camera_id: CameraState(c.camera_id, c.name) for c in config.cameras}
    gate = states["gate-camera-1"]
    gate.status, gate.restarts, gate.media = "active", 3, MediaInfo(fps=25.0)
    gate.live = CameraLive("gate-camera-1")
    gate.live.last_data = 0.0
    gate.live.fanout.subscribe()  # one live viewer
    cam = tmp / "gate-camera-1"
    cam.mkdir(exist_ok=True)
    (cam / "index.m3u8").write_text("#EXTM3U\n")
    transport = httpx.ASGITransport(app=create_app(config, states), client=(client_ip, 5555))
    return httpx.AsyncClient(transport=transport, base_url="http://pod")


async def test_off_unless_configured(tmp_path: Path) -> None:
    async with client_for(tmp_path) as c:
        r = await c.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 404 and r.json()["error"] == "not_found"


async def test_per_camera_gauges_parse(tmp_path: Path) -> None:
    async with client_for(tmp_path, metrics_token=TOKEN, metrics_networks=["127.0.0.0/8"]) as c:
        for headers in ({}, {"Authorization": "Bearer wrong-wrong-wrong-wrong"}):
            r = await c.get("/metrics", headers=headers)
            assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
            assert TOKEN not in r.text
        r = await c.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 200, r.text
        s = samples(r.text)
    assert s[("platebridge_pod_camera_up", "gate-camera-1")] == 1
    assert s[("platebridge_pod_camera_up", "side")] == 0
    assert s[("platebridge_pod_ffmpeg_restarts_total", "gate-camera-1")] == 3
    assert s[("platebridge_pod_camera_fps", "gate-camera-1")] == 25
    assert s[("platebridge_pod_camera_live_viewers", "gate-camera-1")] == 1
    assert s[("platebridge_pod_camera_seconds_since_segment", "gate-camera-1")] >= 0
    assert s[("platebridge_pod_camera_seconds_since_fragment", "gate-camera-1")] >= 0
    assert s[("platebridge_pod_disk_free_bytes", "recording")] > 0
    assert ("platebridge_pod_camera_seconds_since_segment", "side") not in s  # no video yet


async def test_network_allow_list(tmp_path: Path) -> None:
    async with client_for(tmp_path, "192.0.2.7", metrics_networks=["10.0.0.0/8"]) as c:
        r = await c.get("/metrics")
        assert r.status_code == 403 and r.json()["error"] == "forbidden"
    async with client_for(tmp_path, "10.1.2.3", metrics_networks=["10.0.0.0/8"]) as c:
        assert (await c.get("/metrics")).status_code == 200


def test_config_checks_and_never_echoes(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        make_config(tmp_path, metrics_networks=["nope"])
    with pytest.raises(ConfigError) as err:
        make_config(tmp_path, metrics_token="short", metrics_unknown=1)
    assert "short" not in str(err.value)
    config = make_config(tmp_path, metrics_token=TOKEN)
    assert TOKEN not in repr(config) and TOKEN in config.secrets
