"""End to end: a GStreamer RTSP camera, the real recording POD agent heartbeating to the real
portal, and the portal's footage relay routes through the proxy and through the tunnel
(SQLite only: the database is not what is tested here) — spans, fMP4 media with the POD's
placement headers, a single-MP4 export whose ffprobe duration is the range asked ±1 s, a
footage token's URLs, the audit rows, the heartbeat's recording state and disk stored, share
links logged out and revoked, and the VOD playlist rewritten to the portal."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.portal.footage_support import add_user, create_share, footage_token
from tests.portal.streaming_support import PortalProc, portal_process
from tests.support.agent import Agent
from tests.support.builders import CAMERA_ID, pod_config
from tests.support.camera import PROFILES, TestCamera, camera_available
from tests.support.portal import SeededCompany, new_sqlite_url, seed_company, sql
from tests.support.procs import wait_until

pytestmark = pytest.mark.e2e

SMALL = {"width": 320, "height": 240, "fps": 15, "bitrate_kbps": 300, "gop_s": 1.0}


@pytest.fixture(scope="module")
def portal() -> Iterator[PortalProc]:
    with portal_process(new_sqlite_url()) as p:
        yield p


@pytest.fixture(scope="module")
def tenant(portal: PortalProc) -> SeededCompany:
    return seed_company(portal.db_url)


@pytest.fixture(scope="module")
def camera(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestCamera]:
    if not camera_available():
        pytest.fail("needs /usr/bin/python3 with GStreamer RTSP server and ffmpeg")
    profile = dataclasses.replace(PROFILES["h264-aac"], **SMALL)
    cam = TestCamera(tmp_path_factory.mktemp("camera"), profile=profile)
    cam.start()
    try:
        yield cam
    finally:
        cam.stop()


@pytest.fixture(scope="module")
def agent(
    portal: PortalProc,
    tenant: SeededCompany,
    camera: TestCamera,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Agent]:
    tmp = tmp_path_factory.mktemp("agent")
    config = pod_config(
        tmp,
        camera.url,
        tenant=tenant,
        portal_url=portal.url,
        recording_file_seconds=10,
        tunnel=True,
        tunnel_backoff_max=2,
        tunnel_ping_interval=2,
    )  # fmt: skip  (the tunnel is open; the pod is served by proxy until a test says tunnel)
    agent = Agent(tmp, config)
    try:
        agent.wait_status("active", timeout=60)
        yield agent
    finally:
        agent.close()


@pytest.fixture(scope="module")
def manager(portal: PortalProc, tenant: SeededCompany) -> dict[str, str]:
    return add_user(portal.url, portal.db_url, tenant, "manager")


@pytest.fixture(scope="module")
def recorded(
    portal: PortalProc, tenant: SeededCompany, agent: Agent, manager: dict[str, str]
) -> tuple[float, float]:
    """(start, end) of at least 12 s recorded, once the portal lists it."""
    began = time.time()

    def spans() -> list[dict[str, float]] | None:
        r = httpx.get(
            f"{portal.url}/api/footage/{tenant.pod_id}",
            params={"camera_id": CAMERA_ID, "from": began - 120, "to": time.time() + 5},
            headers=manager,
            timeout=15,
        )
        if r.status_code != 200:
            return None
        rec = [s for s in r.json()["spans"] if s["kind"] == "recording"]
        return rec if rec and rec[-1]["end"] - rec[-1]["start"] >= 12 else None

    rec = wait_until(spans, timeout=90, what="12 s recorded, listed through the portal")
    return float(rec[-1]["start"]), float(rec[-1]["end"])


def _ffprobe_duration(data: bytes, tmp: Path) -> float:
    path = tmp / "clip.mp4"
    path.write_bytes(data)
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json", str(path)],
        capture_output=True,
        timeout=30,
        check=True,
    )
    return float(json.loads(out.stdout)["format"]["duration"])


def test_spans_media_and_export_through_the_proxy(
    portal: PortalProc,
    tenant: SeededCompany,
    manager: dict[str, str],
    recorded: tuple[float, float],
    agent: Agent,
    tmp_path: Path,
) -> None:
    start, _ = recorded
    base = f"{portal.url}/api/footage/{tenant.pod_id}"
    r = httpx.get(
        f"{base}/media",
        params={"camera_id": CAMERA_ID, "start": start + 2.5, "duration": 4},  # mid-GOP
        headers=manager,
        timeout=30,
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "video/mp4"
    assert r.headers["cache-control"] == "no-store"
    assert r.content[4:8] == b"ftyp"
    media_start = float(r.headers["x-platebridge-media-start"])
    media_end = float(r.headers["x-platebridge-media-end"])
    assert start + 2.5 - 1.5 <= media_start <= start + 2.5 + 0.01  # the keyframe at or before
    assert media_end > media_start
    assert "x-platebridge-next" in r.headers
    assert int(r.headers["content-length"]) == len(r.content)
    assert str(agent.config["listen_port"]) not in str(r.headers)

    r = httpx.get(
        f"{base}/export",
        params={"camera_id": CAMERA_ID, "from": start + 1, "to": start + 9},
        headers=manager,
        timeout=60,
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "video/mp4"
    disposition = r.headers["content-disposition"]
    assert disposition.startswith(f'attachment; filename="{CAMERA_ID}-') and ".mp4" in disposition
    assert abs(_ffprobe_duration(r.content, tmp_path) - 8) <= 1

    # nothing recorded yet in the future: the POD's 404 no_recording passes on
    r = httpx.get(
        f"{base}/media",
        params={"camera_id": CAMERA_ID, "start": time.time() + 3600},
        headers=manager,
        timeout=30,
    )
    assert r.status_code == 404 and r.json()["error"] == "no_recording", r.text

    rows = sql(
        portal.db_url,
        "SELECT action, method, range_start, range_end FROM audit_events "
        "WHERE action IN ('footage_view', 'footage_export') ORDER BY at",
    )
    actions = {(a, m) for a, m, _, _ in rows}
    assert ("footage_view", "proxy") in actions and ("footage_export", "proxy") in actions
    export_row = next(row for row in rows if row[0] == "footage_export")
    assert export_row[2] == pytest.approx(start + 1) and export_row[3] == pytest.approx(start + 9)


def test_footage_token_urls_play_without_a_session(
    portal: PortalProc,
    tenant: SeededCompany,
    manager: dict[str, str],
    recorded: tuple[float, float],
) -> None:
    start, end = recorded
    r = footage_token(portal.url, manager, tenant.pod_id, CAMERA_ID, start, end)
    assert r.status_code == 200, r.text
    data = r.json()
    spans = httpx.get(portal.url + data["recordings_url"], timeout=15)
    assert spans.status_code == 200, spans.text
    assert any(s["kind"] == "recording" for s in spans.json()["spans"])
    media = httpx.get(portal.url + data["media_url"] + f"&start={start + 1}&duration=3", timeout=30)
    assert media.status_code == 200, media.text
    assert media.content[4:8] == b"ftyp"
    # outside the token's range: refused by the portal before the POD is asked
    late = httpx.get(portal.url + data["media_url"] + f"&start={end + 600}", timeout=15)
    assert late.status_code == 403 and late.json()["error"] == "out_of_range"


def test_heartbeat_recording_state_is_stored(
    portal: PortalProc, tenant: SeededCompany, recorded: tuple[float, float]
) -> None:
    def stored() -> tuple[str, int, int] | None:
        rows = sql(
            portal.db_url,
            "SELECT c.recording, p.disk_total, p.disk_free FROM cameras c "
            "JOIN pods p ON p.id = c.pod_id WHERE p.pod_id = :p AND c.camera_id = :c",
            p=tenant.pod_id,
            c=CAMERA_ID,
        )
        return rows[0] if rows and rows[0][0] and rows[0][1] else None

    recording, total, free = wait_until(stored, timeout=30, what="recording state stored")
    state = json.loads(recording)
    assert state["enabled"] is True and state["state"] == "recording"
    assert total > 0 and 0 <= free <= total


def test_share_link_plays_logged_out_and_stops_when_revoked(
    portal: PortalProc,
    tenant: SeededCompany,
    manager: dict[str, str],
    recorded: tuple[float, float],
    tmp_path: Path,
) -> None:
    start, _ = recorded
    clip = (start + 2, start + 8)
    r = create_share(portal.url, manager, tenant.pod_id, CAMERA_ID, *clip, hours=1)
    assert r.status_code == 201, r.text
    share = r.json()
    secret = share["url"].rsplit("/s/", 1)[1]
    # logged out: the clip, exactly (ffprobe: the range ±1 s), as a download
    r = httpx.get(f"{portal.url}/s/{secret}/clip.mp4", timeout=60)
    assert r.status_code == 200, r.text
    assert r.headers["content-disposition"].startswith("attachment;")
    assert r.headers["referrer-policy"] == "no-referrer"
    assert abs(_ffprobe_duration(r.content, tmp_path) - 6) <= 1
    # the page's player: media inside the clip only (a start before it is clamped to it)
    r = httpx.get(
        f"{portal.url}/s/{secret}/media", params={"start": start - 60, "duration": 60}, timeout=30
    )
    assert r.status_code == 200, r.text
    assert r.content[4:8] == b"ftyp"
    assert float(r.headers["x-platebridge-media-start"]) >= clip[0] - 1.5
    assert float(r.headers["x-platebridge-media-end"]) <= clip[1] + 1.5
    # revoked: gone
    r = httpx.delete(f"{portal.url}/api/shares/{share['id']}", headers=manager, timeout=10)
    assert r.status_code == 200
    for path in ("clip.mp4", "media"):
        r = httpx.get(f"{portal.url}/s/{secret}/{path}", timeout=15)
        assert r.status_code == 410, (path, r.text)


def test_vod_playlist_plays_through_the_portal(
    portal: PortalProc,
    tenant: SeededCompany,
    manager: dict[str, str],
    recorded: tuple[float, float],
    agent: Agent,
) -> None:
    start, end = recorded
    token = footage_token(portal.url, manager, tenant.pod_id, CAMERA_ID, start, end).json()
    url = (
        f"{portal.url}/api/footage/{tenant.pod_id}/vod.m3u8?camera_id={CAMERA_ID}"
        f"&from={start}&to={end}&token={token['token']}"
    )
    r = httpx.get(url, timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/vnd.apple.mpegurl")
    text = r.text
    assert "#EXT-X-ENDLIST" in text and "#EXT-X-MAP:URI=" in text
    uris = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    assert uris and all(u.startswith(f"/api/footage/{tenant.pod_id}/media?") for u in uris)
    assert str(agent.config["listen_port"]) not in text
    # the only token in the playlist is the viewer's own (the POD's never leaves the portal)
    assert all(u.count("token=") == 1 and f"token={token['token']}&" in u for u in uris)
    out = subprocess.run(
        # the media URIs have no file extension: ffmpeg's HLS demuxer must not be picky
        [
            "ffprobe",
            "-v",
            "error",
            "-extension_picky",
            "0",
            "-show_entries",
            "format=duration",
            "-of",
            "json",
            url,
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr.decode(errors="replace")[-800:]
    duration = float(json.loads(out.stdout)["format"]["duration"])
    assert duration >= 6, duration


def test_footage_through_the_tunnel(
    portal: PortalProc,
    tenant: SeededCompany,
    manager: dict[str, str],
    recorded: tuple[float, float],
    tmp_path: Path,
) -> None:
    """The same routes with the pod in ``tunnel`` mode: the portal reaches the POD only through
    the tunnel it opened (the allow-list carries the footage paths)."""
    start, _ = recorded
    admin = portal.login(tenant.email, tenant.password)
    pod_url = f"{portal.url}/api/pods/{tenant.pod_id}"

    def tunnelled() -> bool:
        return bool(httpx.get(pod_url, headers=admin, timeout=10).json()["tunnel_connected"])

    wait_until(tunnelled, timeout=40, what="the POD's tunnel connected")
    r = httpx.patch(pod_url, json={"stream_mode": "tunnel"}, headers=admin, timeout=10)
    assert r.status_code == 200, r.text
    try:
        base = f"{portal.url}/api/footage/{tenant.pod_id}"
        q = {"camera_id": CAMERA_ID}
        r = httpx.get(base, params={**q, "from": start, "to": start + 10}, headers=manager)
        assert r.status_code == 200, r.text
        assert any(s["kind"] == "recording" for s in r.json()["spans"])
        r = httpx.get(
            f"{base}/media", params={**q, "start": start + 3, "duration": 3}, headers=manager,
            timeout=30,
        )  # fmt: skip
        assert r.status_code == 200, r.text
        assert r.content[4:8] == b"ftyp" and "x-platebridge-media-start" in r.headers
        r = httpx.get(
            f"{base}/export", params={**q, "from": start + 1, "to": start + 7}, headers=manager,
            timeout=60,
        )  # fmt: skip
        assert r.status_code == 200, r.text
        assert abs(_ffprobe_duration(r.content, tmp_path) - 6) <= 1
        rows = sql(
            portal.db_url,
            "SELECT method FROM audit_events WHERE action = 'footage_export' "
            "ORDER BY at DESC LIMIT 1",
        )
        assert rows == [("tunnel",)]
        token = footage_token(portal.url, manager, tenant.pod_id, CAMERA_ID, start, start + 10)
        assert token.json()["method"] == "tunnel"
    finally:
        httpx.patch(pod_url, json={"stream_mode": "proxy"}, headers=admin, timeout=10)
