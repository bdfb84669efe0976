"""End to end: a GStreamer RTSP camera, the real POD agent (ffmpeg remux) heartbeating to the
real portal, and ffmpeg as the HLS client — through the portal's proxy and directly from the
POD. SQLite only (the database is not what is tested here)."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.portal.streaming_support import (
    PortalProc,
    add_viewer,
    playlist_uris,
    portal_process,
    stream_token,
)
from tests.support.agent import Agent
from tests.support.builders import pod_config
from tests.support.camera import TestCamera, rtsp_camera  # noqa: F401  (fixture)
from tests.support.portal import SeededCompany, cli_json, new_sqlite_url, seed_company
from tests.support.procs import wait_until

pytestmark = pytest.mark.e2e
CAMERA = "gate-camera-1"


@pytest.fixture(scope="module")
def portal() -> Iterator[PortalProc]:
    # --log-level info: uvicorn's access log is on, so the redaction test has lines to read
    with portal_process(new_sqlite_url(), log_level="info") as p:
        yield p


@pytest.fixture(scope="module")
def tenant(portal: PortalProc) -> SeededCompany:
    return seed_company(portal.db_url)


@pytest.fixture(scope="module")
def agent(
    portal: PortalProc,
    tenant: SeededCompany,
    rtsp_camera: TestCamera,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Agent]:
    tmp = tmp_path_factory.mktemp("agent")
    config = pod_config(
        tmp, rtsp_camera.url, tenant=tenant, portal_url=portal.url, cors_origins=[portal.url]
    )
    agent = Agent(tmp, config)
    try:
        agent.wait_status("active", timeout=40)
        session = portal.login(tenant.email, tenant.password)

        def streamable() -> bool:
            cams = httpx.get(f"{portal.url}/api/cameras", headers=session, timeout=10).json()
            return any(c["id"] == CAMERA and c["streamable"] for c in cams["cameras"])

        wait_until(streamable, timeout=30, what="camera registered by heartbeat")
        yield agent
    finally:
        agent.close()


def decode_frames(url: str, frames: int = 10) -> list[str]:
    """ffmpeg reads ``url`` as an HLS client and decodes ``frames`` video frames (framemd5)."""
    out = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", url, "-frames:v", str(frames), "-f",
         "framemd5", "-"],
        capture_output=True,
        timeout=90,
        check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr.decode(errors="replace")[-800:]
    lines = [ln for ln in out.stdout.decode().splitlines() if ln and not ln.startswith("#")]
    return [ln.rsplit(",", 1)[-1].strip() for ln in lines]


def test_ffmpeg_plays_the_proxied_stream(
    portal: PortalProc, tenant: SeededCompany, agent: Agent
) -> None:
    tok = stream_token(
        portal.url, portal.login(tenant.email, tenant.password), tenant.pod_id, CAMERA
    )
    assert tok.status_code == 200, tok.text
    data = tok.json()
    assert data["stream_mode"] == "proxy"
    assert data["proxy_url"].startswith(f"/api/pod/proxy-stream/{tenant.pod_id}?camera_id={CAMERA}")
    hashes = decode_frames(portal.url + data["proxy_url"])
    assert len(hashes) == 10
    assert len(set(hashes)) > 1  # a moving picture, not one frozen/blank frame


def test_proxied_playlist_hides_the_pod(
    portal: PortalProc, tenant: SeededCompany, agent: Agent
) -> None:
    session = portal.login(tenant.email, tenant.password)
    r = httpx.get(
        f"{portal.url}/api/pod/proxy-stream/{tenant.pod_id}",
        params={"camera_id": CAMERA},
        headers=session,
        timeout=15,
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/vnd.apple.mpegurl")
    assert str(agent.config["listen_port"]) not in r.text and "token=" not in r.text
    uris = playlist_uris(r.text)
    assert uris and all(
        re.fullmatch(
            rf"/api/pod/proxy-stream/{tenant.pod_id}/segment/seg_\d+\.ts\?camera_id={CAMERA}", u
        )
        for u in uris
    ), uris
    seg = httpx.get(portal.url + uris[-1], headers=session, timeout=15)
    assert seg.status_code == 200
    assert seg.headers["content-type"] == "video/mp2t"
    assert len(seg.content) % 188 == 0 and seg.content[0] == 0x47


def test_ffmpeg_plays_the_direct_url(
    portal: PortalProc, tenant: SeededCompany, agent: Agent
) -> None:
    session = portal.login(tenant.email, tenant.password)
    r = httpx.patch(
        f"{portal.url}/api/pods/{tenant.pod_id}",
        json={"stream_mode": "direct"},
        headers=session,
        timeout=10,
    )
    assert r.status_code == 200 and r.json()["stream_mode"] == "direct"
    try:
        data = stream_token(portal.url, session, tenant.pod_id, CAMERA).json()
        assert data["stream_mode"] == "direct"
        assert data["direct_url"].startswith(f"{agent.base}/stream?token=")
        assert len(decode_frames(data["direct_url"], 5)) == 5
        listed = httpx.get(f"{portal.url}/api/cameras", headers=session, timeout=10).json()
        cam = next(c for c in listed["cameras"] if c["id"] == CAMERA)
        assert cam["stream_mode"] == "direct"
        assert cam["direct_url"].startswith(f"{agent.base}/stream?token=")
        assert httpx.get(cam["direct_url"], timeout=15).status_code == 200  # the POD accepts it
        # CORS on the POD lets the portal's pages fetch it
        pre = httpx.get(cam["direct_url"], headers={"Origin": portal.url}, timeout=15)
        assert pre.headers.get("access-control-allow-origin") == portal.url
    finally:
        cli_json(
            portal.db_url, "pod", "set-mode", "--pod-id", tenant.pod_id, "--mode", "proxy",
            "--company", tenant.company_id,
        )  # fmt: skip
    pods = httpx.get(f"{portal.url}/api/pods", headers=session, timeout=10).json()["pods"]
    assert pods[0]["stream_mode"] == "proxy"
    assert pods[0]["network"] == "lan"  # ipaddress counts loopback as private
    assert pods[0]["unavailable_reason"] is None


def test_snapshot_through_the_portal(
    portal: PortalProc, tenant: SeededCompany, agent: Agent
) -> None:
    session = portal.login(tenant.email, tenant.password)
    r = httpx.get(
        f"{portal.url}/api/pod/snapshot/{tenant.pod_id}",
        params={"camera_id": CAMERA},
        headers=session,
        timeout=30,
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/jpeg" and r.content[:2] == b"\xff\xd8"


def test_viewer_tokens_and_audit(portal: PortalProc, tenant: SeededCompany, agent: Agent) -> None:
    email, password = add_viewer(portal.db_url, tenant)
    viewer = portal.login(email, password)
    data = stream_token(portal.url, viewer, tenant.pod_id, CAMERA).json()
    for _ in range(3):  # one viewing, three playlist reloads
        assert httpx.get(portal.url + data["proxy_url"], timeout=15).status_code == 200
    admin = portal.login(tenant.email, tenant.password)
    events = httpx.get(
        f"{portal.url}/api/audit", params={"user": email}, headers=admin, timeout=10
    ).json()["events"]
    actions = sorted(e["action"] for e in events)
    assert actions == ["stream_started", "token_issued"], events
    assert all(e["method"] == "proxy" and e["client_ip"] == "127.0.0.1" for e in events)
    assert httpx.get(f"{portal.url}/api/audit", headers=viewer, timeout=10).status_code == 403


def test_tokens_never_reach_the_portal_log(
    portal: PortalProc, tenant: SeededCompany, agent: Agent
) -> None:
    session = portal.login(tenant.email, tenant.password)
    data = stream_token(portal.url, session, tenant.pod_id, CAMERA).json()
    r = httpx.get(portal.url + data["proxy_url"], timeout=15)
    seg = httpx.get(portal.url + playlist_uris(r.text)[-1], timeout=15)
    assert seg.status_code == 200
    httpx.get(portal.url + data["proxy_url"].replace("token=", "token=x"), timeout=15)  # a 401

    def logged() -> str | None:
        text = Path(portal.proc.log_path).read_text(errors="replace")
        return text if "/segment/" in text else None

    output: Any = wait_until(logged, timeout=10, what="access log lines")
    assert "token=***" in output  # the lines are there, redacted
    assert data["token"] not in output
    assert data["token"].split(".")[1] not in output  # not even the signature
    assert not re.search(r"token=(?!\*\*\*)", output), "an unredacted token= in the log"
    assert tenant.stream_token_secret not in output
