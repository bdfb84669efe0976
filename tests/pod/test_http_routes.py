"""Token checks on every route, in-process (real ASGI app, real files on disk)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from platebridge.pod.config import PodConfig, parse_config
from platebridge.pod.http import create_app
from platebridge.pod.supervisor import CameraState
from tests.support.builders import POD_ID, SECRET, stream_token

SEGMENT = b"\x47" + b"\x00" * 187


def make_config(tmp: Path, **extra: object) -> PodConfig:
    raw = {
        "pod_id": POD_ID,
        "portal_url": "http://portal.invalid",
        "api_key": "pbk_x",
        "stream_token_secret": SECRET,
        "hls_dir": str(tmp),
        "cameras": [
            {"camera_id": "gate-camera-1", "name": "Gate", "rtsp_url": "rtsp://u:pw@10.0.0.5/s"},
            {"camera_id": "side", "name": "Side", "rtsp_url": "rtsp://10.0.0.6/s"},
        ],
    }
    raw.update(extra)
    return parse_config(raw, env={})


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    config = make_config(tmp_path, cors_origins=["https://portal.example"])
    states = {c.camera_id: CameraState(c.camera_id, c.name) for c in config.cameras}
    states["gate-camera-1"].status = "active"
    cam = tmp_path / "gate-camera-1"
    cam.mkdir()
    (cam / "seg_5.ts").write_bytes(SEGMENT)
    (cam / "index.m3u8").write_text("#EXTM3U\n#EXTINF:1.0,\nseg_5.ts\n")
    (tmp_path / "secret.txt").write_text("nope")
    app = create_app(config, states)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://pod") as c:
        yield c


async def test_playlist_and_segment(client: httpx.AsyncClient) -> None:
    tok = stream_token()
    r = await client.get("/stream", params={"token": tok})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/vnd.apple.mpegurl"
    assert f"stream/gate-camera-1/seg_5.ts?token={tok}" in r.text
    seg = await client.get("/stream/gate-camera-1/seg_5.ts", params={"token": tok})
    assert seg.status_code == 200 and seg.content == SEGMENT


@pytest.mark.parametrize(
    ("params", "status", "error"),
    [
        ({}, 401, "token_missing"),
        ({"token": ""}, 401, "token_missing"),
        ({"token": "x" * 5000}, 401, "token_malformed"),
        ({"token": "abc.def"}, 401, "token_bad_signature"),
        ({"token": stream_token(secret="wrong-secret-0123456789")}, 401, "token_bad_signature"),
        ({"token": stream_token(exp_in=-1)}, 401, "token_expired"),
        ({"token": stream_token(pod_id="another-pod")}, 403, "wrong_pod"),
        ({"token": stream_token("ghost")}, 404, "unknown_camera"),
        ({"token": stream_token("side")}, 503, "not_ready"),
    ],
)
async def test_stream_errors(
    client: httpx.AsyncClient, params: dict[str, str], status: int, error: str
) -> None:
    r = await client.get("/stream", params=params)
    assert r.status_code == status
    assert r.json()["error"] == error
    assert r.headers["content-type"] == "application/json"


async def test_503_carries_retry_after_and_status(client: httpx.AsyncClient) -> None:
    r = await client.get("/stream", params={"token": stream_token("side")})
    assert r.headers["retry-after"] == "1"
    assert "starting" in r.json()["detail"]


@pytest.mark.parametrize(
    ("path", "tok", "status"),
    [
        ("/stream/gate-camera-1/seg_5.ts", stream_token("side"), 403),
        ("/stream/ghost/seg_5.ts", stream_token("ghost"), 404),
        ("/stream/gate-camera-1/seg_6.ts", stream_token(), 404),
        ("/stream/gate-camera-1/index.m3u8", stream_token(), 404),
        ("/stream/gate-camera-1/..%2Fsecret.txt", stream_token(), 404),
        ("/stream/gate-camera-1/%2E%2E%2F%2E%2E%2Fsecret.txt", stream_token(), 404),
        ("/stream/..%2Fsecret.txt/seg_5.ts", stream_token(), 404),
        ("/stream/gate-camera-1/seg_5.ts", stream_token(exp_in=-1), 401),
    ],
)
async def test_segment_checks(client: httpx.AsyncClient, path: str, tok: str, status: int) -> None:
    r = await client.get(path, params={"token": tok})
    assert r.status_code == status
    assert "error" in r.json()
    assert "nope" not in r.text


async def test_health_lists_cameras_without_urls(client: httpx.AsyncClient) -> None:
    r = await client.get("/health")
    body = r.json()
    assert body["pod_id"] == POD_ID and body["uptime_seconds"] >= 0
    assert [(c["camera_id"], c["status"]) for c in body["cameras"]] == [
        ("gate-camera-1", "active"),
        ("side", "starting"),
    ]
    assert "rtsp" not in r.text and "pw" not in r.text


async def test_unknown_route_and_method_are_json(client: httpx.AsyncClient) -> None:
    r = await client.get("/nope")
    assert (r.status_code, r.json()["error"]) == (404, "not_found")
    r = await client.post("/stream")
    assert (r.status_code, r.json()["error"]) == (405, "method_not_allowed")


async def test_cors_for_configured_origin_only(client: httpx.AsyncClient) -> None:
    ok = await client.get(
        "/stream", params={"token": stream_token()}, headers={"Origin": "https://portal.example"}
    )
    assert ok.headers["access-control-allow-origin"] == "https://portal.example"
    other = await client.get(
        "/stream", params={"token": stream_token()}, headers={"Origin": "https://evil.example"}
    )
    assert "access-control-allow-origin" not in other.headers
    pre = await client.options(
        "/stream",
        headers={"Origin": "https://portal.example", "Access-Control-Request-Method": "GET"},
    )
    assert pre.status_code == 200
