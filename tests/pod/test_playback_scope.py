"""The POD's live paths refuse footage tokens (403 wrong_scope), in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from platebridge.pod.http import create_app
from platebridge.pod.supervisor import CameraState
from tests.pod.test_http_routes import SEGMENT, make_config
from tests.support.builders import footage_token, stream_token

NOW = 1_767_225_600


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    config = make_config(tmp_path)
    states = {c.camera_id: CameraState(c.camera_id, c.name) for c in config.cameras}
    states["gate-camera-1"].status = "active"
    cam = tmp_path / "gate-camera-1"
    cam.mkdir()
    (cam / "seg_5.ts").write_bytes(SEGMENT)
    (cam / "index.m3u8").write_text("#EXTM3U\n#EXTINF:1.0,\nseg_5.ts\n")
    transport = httpx.ASGITransport(app=create_app(config, states))
    async with httpx.AsyncClient(transport=transport, base_url="http://pod") as c:
        yield c


@pytest.mark.parametrize(
    "path",
    ["/stream", "/stream/gate-camera-1/seg_5.ts", "/snapshot", "/live/gate-camera-1"],
)
async def test_live_paths_refuse_footage_tokens(client: httpx.AsyncClient, path: str) -> None:
    token = footage_token(start=NOW - 3600, end=NOW)
    r = await client.get(path, params={"token": token})
    assert r.status_code == 403
    assert r.json()["error"] == "wrong_scope"
    assert token not in r.text


async def test_the_same_paths_still_take_live_tokens(client: httpx.AsyncClient) -> None:
    token = stream_token()
    assert (await client.get("/stream", params={"token": token})).status_code == 200
    seg = await client.get("/stream/gate-camera-1/seg_5.ts", params={"token": token})
    assert seg.content == SEGMENT
