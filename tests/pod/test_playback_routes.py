"""The footage routes in-process (real ASGI app, real SQLite index, byte-level recordings on
disk): token and parameter checks, the spans JSON, the media body and its headers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from platebridge.core.fmp4 import split
from platebridge.pod.config import PodConfig
from platebridge.pod.http import create_app
from platebridge.pod.playback_routes import MAX_EXPORTS, ExportSlots
from platebridge.pod.recording.mp4scan import scan_file
from platebridge.pod.recording.recorder import Recording
from platebridge.pod.supervisor import CameraState
from tests.pod.test_http_routes import make_config
from tests.pod.test_playback_plan import T0, index_row, recording
from tests.support.builders import CAMERA_ID, footage_token, stream_token

CAM = CAMERA_ID
DAY = (int(T0) - 3600, int(T0) + 86400)


def _app(config: PodConfig, rec: Recording | None) -> httpx.AsyncClient:
    states = {c.camera_id: CameraState(c.camera_id, c.name) for c in config.cameras}
    app = create_app(config, states, recording=rec)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://pod")


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    config = make_config(tmp_path, recording_dir=str(tmp_path / "rec"))
    rec = Recording(config)
    assert rec.index is not None
    day = tmp_path / "rec" / CAM / "2026-01-01"
    day.mkdir(parents=True)
    for name, start in (("000000.mp4", T0), ("000010.mp4", T0 + 10), ("000100.mp4", T0 + 60)):
        path = day / name
        path.write_bytes(recording(10, media0=0.0, wall0=start))
        rec.index.put(index_row(path, start))
    async with _app(config, rec) as c:
        yield c
    rec.close()


def tok(camera_id: str = CAM, span: tuple[int, int] = DAY) -> str:
    return footage_token(camera_id, start=span[0], end=span[1])


async def test_spans(client: httpx.AsyncClient) -> None:
    r = await client.get(
        f"/recordings/{CAM}", params={"token": tok(), "from": T0 - 60, "to": T0 + 120}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["camera_id"] == CAM and body["from"] == T0 - 60 and body["to"] == T0 + 120
    assert [(s["kind"], s["start"], s["end"]) for s in body["spans"]] == [
        ("gap", T0 - 60, T0),
        ("recording", T0, T0 + 20),
        ("gap", T0 + 20, T0 + 60),
        ("recording", T0 + 60, T0 + 70),
        ("gap", T0 + 70, T0 + 120),
    ]
    assert body["spans"][0]["reason"] == "unknown" and body["spans"][1]["reason"] is None
    assert body["oldest"] == T0 and body["newest"] == T0 + 70


async def test_media_body_and_headers(client: httpx.AsyncClient) -> None:
    params: dict[str, Any] = {"token": tok(), "start": T0 + 13.5, "duration": 3}
    r = await client.get(f"/recordings/{CAM}/media", params=params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "video/mp4"
    assert float(r.headers["x-platebridge-media-start"]) == T0 + 12  # keyframe ≤ start
    assert float(r.headers["x-platebridge-media-end"]) == T0 + 18  # to the next keyframe
    assert float(r.headers["x-platebridge-next"]) == T0 + 18
    assert "x-platebridge-live-edge" not in r.headers
    assert int(r.headers["content-length"]) == len(r.content)
    parsed = split(r.content)
    assert parsed.init is not None and parsed.fragments[0].keyframe
    assert len(parsed.fragments) == 6


async def test_media_at_the_end_and_in_a_gap(client: httpx.AsyncClient, tmp_path: Path) -> None:
    path = f"/recordings/{CAM}/media"
    r = await client.get(path, params={"token": tok(), "start": T0 + 19})
    assert r.status_code == 200
    assert float(r.headers["x-platebridge-media-end"]) == T0 + 20
    assert float(r.headers["x-platebridge-next"]) == T0 + 60  # the next recorded span
    gap = await client.get(path, params={"token": tok(), "start": T0 + 30, "duration": 20})
    assert gap.status_code == 200
    assert float(gap.headers["x-platebridge-media-start"]) == T0 + 60
    assert gap.headers["x-platebridge-live-edge"] == "1"
    assert "x-platebridge-next" not in gap.headers
    body = tmp_path / "gap.mp4"
    body.write_bytes(gap.content)
    assert scan_file(body).fragments[0].media_start == 0.0  # rebased timeline
    after = await client.get(path, params={"token": tok(), "start": T0 + 80})
    assert after.status_code == 404 and after.json()["error"] == "no_recording"


@pytest.mark.parametrize(
    "params",
    [
        {"start": "x"},
        {"start": "nan"},
        {"start": "inf"},
        {"start": "-5"},
        {},
        {"start": str(T0), "duration": "0.5"},
        {"start": str(T0), "duration": "61"},
        {"start": str(T0), "duration": "ten"},
    ],
)
async def test_media_bad_params(client: httpx.AsyncClient, params: dict[str, str]) -> None:
    r = await client.get(f"/recordings/{CAM}/media", params={"token": tok(), **params})
    assert r.status_code == 400 and r.json()["error"] == "bad_request"


@pytest.mark.parametrize(
    ("route", "span"),
    [
        ("", ("100", "")),
        ("", ("200", "100")),
        ("", ("100", "100")),
        ("", (str(T0), str(T0 + 7 * 86400 + 1))),
        ("/export", (str(T0), str(T0 + 1801))),
        ("/export", ("abc", str(T0))),
    ],
)
async def test_range_bad_params(
    client: httpx.AsyncClient, route: str, span: tuple[str, str]
) -> None:
    params = {"token": tok(), "from": span[0], "to": span[1]}
    r = await client.get(f"/recordings/{CAM}{route}", params=params)
    assert r.status_code == 400 and r.json()["error"] == "bad_request"


@pytest.mark.parametrize("route", ["", "/media", "/export"])
async def test_token_checks(client: httpx.AsyncClient, route: str) -> None:
    path = f"/recordings/{CAM}{route}"
    q = {"from": T0, "to": T0 + 10, "start": T0, "duration": 10}
    cases: list[tuple[str | None, int, str]] = [
        (None, 401, "token_missing"),
        ("garbage", 401, "token_malformed"),
        (stream_token(), 403, "wrong_scope"),
        (tok("side"), 403, "wrong_camera"),
        (tok(span=(int(T0) + 5, int(T0) + 100)), 403, "out_of_range"),
        (tok(span=(int(T0) - 100, int(T0) + 8)), 403, "out_of_range"),
    ]
    for token, status, error in cases:
        params = q | ({"token": token} if token else {})
        r = await client.get(path, params=params)
        assert (r.status_code, r.json()["error"]) == (status, error), (token, r.text)
        assert token is None or token not in r.text
    unknown = await client.get(f"/recordings/nope{route}", params=q | {"token": tok("nope")})
    assert unknown.status_code == 404 and unknown.json()["error"] == "not_found"


@pytest.mark.parametrize("route", ["", "/media", "/export"])
async def test_recording_off(tmp_path: Path, route: str) -> None:
    config = make_config(tmp_path)
    q = {"from": T0, "to": T0 + 10, "start": T0, "token": tok()}
    async with _app(config, None) as c:
        r = await c.get(f"/recordings/{CAM}{route}", params=q)
    assert r.status_code == 503 and r.json()["error"] == "recording_off"


async def test_export_refusals(client: httpx.AsyncClient) -> None:
    path = f"/recordings/{CAM}/export"
    none = await client.get(path, params={"token": tok(), "from": T0 + 25, "to": T0 + 55})
    assert none.status_code == 404 and none.json()["error"] == "no_recording"
    transport = client._transport
    assert isinstance(transport, httpx.ASGITransport)
    transport.app.state.export_slots = ExportSlots(MAX_EXPORTS)  # type: ignore[attr-defined]
    transport.app.state.export_slots.used = MAX_EXPORTS  # type: ignore[attr-defined]
    busy = await client.get(path, params={"token": tok(), "from": T0, "to": T0 + 10})
    assert busy.status_code == 429 and busy.json()["error"] == "busy"
    assert busy.headers["retry-after"] == "5"


async def test_a_browser_on_the_portal_may_read_the_headers(tmp_path: Path) -> None:
    config = make_config(
        tmp_path, recording_dir=str(tmp_path / "rec"), cors_origins=["https://portal.example"]
    )
    rec = Recording(config)
    assert rec.index is not None
    path = tmp_path / "rec" / "a.mp4"
    path.write_bytes(recording(4, media0=0.0, wall0=T0))
    rec.index.put(index_row(path, T0))
    async with _app(config, rec) as c:
        r = await c.get(
            f"/recordings/{CAM}/media",
            params={"token": tok(), "start": T0},
            headers={"Origin": "https://portal.example"},
        )
    rec.close()
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "https://portal.example"
    exposed = r.headers["access-control-expose-headers"].lower()
    assert "x-platebridge-media-start" in exposed and "x-platebridge-next" in exposed
