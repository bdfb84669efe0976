"""``POST /api/pod/stream-token``, stream modes (PATCH / CLI), the camera and pod listings'
streaming fields, and token-or-session authorisation of the proxy — on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest
from sqlalchemy import update

from platebridge.core.tokens import verify_stream_token
from tests.portal.streaming_support import (
    PortalProc,
    add_viewer,
    heartbeat,
    portal_process,
    stream_token,
)
from tests.support import builders
from tests.support.portal import SeededCompany, age_pods, cli_json, seed_company

pytestmark = pytest.mark.e2e  # a real portal process (tests/conftest.py guards it)

FALLBACK = "portal-wide-fallback-secret-0123456789"
CAMERA = "gate-camera-1"


@pytest.fixture(scope="module")
def portal(db_url: str) -> Iterator[PortalProc]:
    env = {
        "PLATEBRIDGE_POD_NETWORKS": "127.0.0.0/8,10.0.0.0/8,100.64.0.0/10",
        "PLATEBRIDGE_POD_STREAM_SECRET": FALLBACK,
    }
    with portal_process(db_url, env) as p:
        yield p


@pytest.fixture
def tenant(portal: PortalProc) -> SeededCompany:
    seeded = seed_company(portal.db_url)
    heartbeat(portal.url, seeded, "10.0.0.5", 8000, cameras=(CAMERA, "side-gate"))
    return seeded


def auth(portal: PortalProc, seeded: SeededCompany) -> dict[str, str]:
    return portal.login(seeded.email, seeded.password)


def test_token_contract(portal: PortalProc, tenant: SeededCompany) -> None:
    headers = auth(portal, tenant)  # signing in (argon2) is slow: not part of the window
    before = int(time.time())
    r = stream_token(portal.url, headers, tenant.pod_id, CAMERA)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    data = r.json()
    assert set(data) == {
        "token", "expires_at", "expires_in", "stream_mode", "proxy_url", "direct_url", "live_url",
    }  # fmt: skip
    claims = verify_stream_token(data["token"], tenant.stream_token_secret)
    me = httpx.get(f"{portal.url}/api/auth/me", headers=auth(portal, tenant)).json()
    assert claims.user_id == str(me.get("user_id") or me.get("id"))
    assert (claims.pod_id, claims.camera_id) == (tenant.pod_id, CAMERA)
    assert claims.iat is not None and before <= claims.iat <= time.time() + 1
    assert 3600 <= claims.exp - claims.iat <= 3601  # exp rounds up: whatever the load
    assert 3598 <= data["expires_in"] <= 3601
    assert data["expires_at"].endswith("Z")
    assert datetime.fromisoformat(data["expires_at"].replace("Z", "+00:00")).timestamp() == (
        claims.exp
    )
    assert data["stream_mode"] == "proxy"
    assert data["proxy_url"] == (
        f"/api/pod/proxy-stream/{tenant.pod_id}?camera_id={CAMERA}&token={data['token']}"
    )
    assert data["direct_url"] == f"http://10.0.0.5:8000/stream?token={data['token']}"
    assert data["live_url"] == (
        f"/api/pod/live/{tenant.pod_id}?camera_id={CAMERA}&token={data['token']}"
    )


def test_other_company_gets_the_same_404_as_nothing(portal: PortalProc) -> None:
    mine, theirs = seed_company(portal.db_url), seed_company(portal.db_url, pod_id="their-pod")
    heartbeat(portal.url, theirs, "10.0.0.9", 8000)
    session = auth(portal, mine)
    cross = stream_token(portal.url, session, "their-pod", CAMERA)
    nothing = stream_token(portal.url, session, "their-pod-x", CAMERA)
    assert cross.status_code == nothing.status_code == 404
    assert cross.json()["error"] == "not_found"
    assert cross.json()["detail"].replace("their-pod", "X") == nothing.json()["detail"].replace(
        "their-pod-x", "X"
    )
    for path in ("proxy-stream/their-pod", "snapshot/their-pod"):
        r = httpx.get(f"{portal.url}/api/pod/{path}", params={"camera_id": CAMERA}, headers=session)
        assert r.status_code == 404 and r.json()["error"] == "not_found"
    r = httpx.patch(
        f"{portal.url}/api/pods/their-pod", json={"stream_mode": "direct"}, headers=session
    )
    assert r.status_code == 404


def test_offline_pod_is_409(portal: PortalProc, tenant: SeededCompany) -> None:
    age_pods(portal.db_url, tenant.company_id, 100_000)
    r = stream_token(portal.url, auth(portal, tenant), tenant.pod_id, CAMERA)
    assert r.status_code == 409
    assert r.json()["error"] == "pod_offline" and "offline" in r.json()["detail"]
    r = httpx.get(
        f"{portal.url}/api/pod/proxy-stream/{tenant.pod_id}",
        params={"camera_id": CAMERA},
        headers=auth(portal, tenant),
    )
    assert r.status_code == 409 and r.json()["error"] == "pod_offline"


def test_refused_address_is_409_with_reason_in_proxy_mode_only(
    portal: PortalProc, tenant: SeededCompany
) -> None:
    heartbeat(portal.url, tenant, "192.168.1.100", 8000)  # not in this portal's networks
    session = auth(portal, tenant)
    r = stream_token(portal.url, session, tenant.pod_id, CAMERA)
    assert r.status_code == 409
    assert r.json()["error"] == "pod_address_refused"
    assert "outside the allowed POD networks" in r.json()["detail"]
    pod = httpx.get(f"{portal.url}/api/pods/{tenant.pod_id}", headers=session).json()
    assert pod["network"] == "lan" and "outside" in pod["unavailable_reason"]
    # direct mode: the browser fetches from the POD, the portal connects to nothing
    r = httpx.patch(
        f"{portal.url}/api/pods/{tenant.pod_id}", json={"stream_mode": "direct"}, headers=session
    )
    assert r.status_code == 200 and r.json()["unavailable_reason"] is None
    data = stream_token(portal.url, session, tenant.pod_id, CAMERA).json()
    assert data["stream_mode"] == "direct"
    assert data["direct_url"] == f"http://192.168.1.100:8000/stream?token={data['token']}"
    assert data["live_url"] == f"ws://192.168.1.100:8000/live/{CAMERA}/ws?token={data['token']}"


def test_pods_list_shows_network(portal: PortalProc, tenant: SeededCompany) -> None:
    session = auth(portal, tenant)
    for ip, kind in (("100.64.1.5", "vpn"), ("10.0.0.5", "lan"), ("8.8.8.8", "public")):
        heartbeat(portal.url, tenant, ip, 8000)
        pod = httpx.get(f"{portal.url}/api/pods", headers=session).json()["pods"][0]
        assert pod["network"] == kind
        assert pod["stream_mode"] == "proxy"
        assert (pod["unavailable_reason"] is None) == (kind != "public")


def test_stream_mode_is_admin_only_and_validated(portal: PortalProc, tenant: SeededCompany) -> None:
    email, password = add_viewer(portal.db_url, tenant)
    viewer = portal.login(email, password)
    url = f"{portal.url}/api/pods/{tenant.pod_id}"
    r = httpx.patch(url, json={"stream_mode": "direct"}, headers=viewer)
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    r = httpx.patch(url, json={"stream_mode": "carrier-pigeon"}, headers=auth(portal, tenant))
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "stream_mode"
    r = httpx.patch(url, json={"stream_mode": "direct", "x": 1}, headers=auth(portal, tenant))
    assert r.status_code == 422
    # viewers may watch (tokens), just not change the mode
    assert stream_token(portal.url, viewer, tenant.pod_id, CAMERA).status_code == 200


def test_cli_set_mode_and_direct_urls_in_camera_list(
    portal: PortalProc, tenant: SeededCompany
) -> None:
    out = cli_json(
        portal.db_url, "pod", "set-mode", "--pod-id", tenant.pod_id, "--mode", "direct",
        "--company", tenant.company_id,
    )  # fmt: skip
    assert out == {
        "pod_id": tenant.pod_id,
        "company_id": tenant.company_id,
        "stream_mode": "direct",
    }
    cams = httpx.get(f"{portal.url}/api/cameras", headers=auth(portal, tenant)).json()["cameras"]
    assert {c["id"] for c in cams} == {CAMERA, "side-gate"}
    for cam in cams:
        assert cam["stream_mode"] == "direct"
        url = cam["direct_url"]
        assert url.startswith("http://10.0.0.5:8000/stream?token=")
        claims = verify_stream_token(url.split("token=", 1)[1], tenant.stream_token_secret)
        assert claims.camera_id == cam["id"]
        token = url.split("token=", 1)[1]  # the same token on the POD's live WebSocket
        assert cam["live_url"] == f"ws://10.0.0.5:8000/live/{cam['id']}/ws?token={token}"
    cli_json(
        portal.db_url, "pod", "set-mode", "--pod-id", tenant.pod_id, "--mode", "proxy",
        "--company", tenant.company_id,
    )  # fmt: skip
    cams = httpx.get(f"{portal.url}/api/cameras", headers=auth(portal, tenant)).json()["cameras"]
    assert all(c["direct_url"] is None and c["stream_mode"] == "proxy" for c in cams)
    assert {c["live_url"] for c in cams} == {
        f"/api/pod/live/{tenant.pod_id}?camera_id={c}" for c in (CAMERA, "side-gate")
    }


async def _clear_secret(db_url: str, company_id: str) -> None:
    from platebridge.portal.db import Database
    from platebridge.portal.models import Pod
    from platebridge.portal.settings import normalize_database_url

    db = Database(normalize_database_url(db_url))
    try:
        async with db.write() as s:
            await s.execute(
                update(Pod)
                .where(Pod.company_id == uuid.UUID(company_id))
                .values(stream_token_secret="")
            )
    finally:
        await db.dispose()


def test_pod_without_secret_uses_the_portal_wide_one(
    portal: PortalProc, tenant: SeededCompany
) -> None:
    asyncio.run(_clear_secret(portal.db_url, tenant.company_id))
    data = stream_token(portal.url, auth(portal, tenant), tenant.pod_id, CAMERA).json()
    assert verify_stream_token(data["token"], FALLBACK).pod_id == tenant.pod_id


def test_proxy_token_authorisation(portal: PortalProc, tenant: SeededCompany) -> None:
    """Without a session, only a valid token for exactly this pod and camera passes (the POD
    itself is unreachable here, so passing shows as 502, refusing as 401)."""
    heartbeat(portal.url, tenant, "127.0.0.1", 9, cameras=(CAMERA, "side-gate"))  # port 9: closed
    session = auth(portal, tenant)
    good = stream_token(portal.url, session, tenant.pod_id, CAMERA).json()["token"]
    url = f"{portal.url}/api/pod/proxy-stream/{tenant.pod_id}"

    def get(camera: str, token: str | None) -> httpx.Response:
        params = {"camera_id": camera, **({"token": token} if token is not None else {})}
        return httpx.get(url, params=params, timeout=15)

    assert get(CAMERA, good).status_code == 502  # authorised, then the POD is down
    assert get(CAMERA, None).status_code == 401
    assert get("side-gate", good).json()["error"] == "invalid_stream_token"  # other camera
    me = httpx.get(f"{portal.url}/api/auth/me", headers=session).json()
    user_id = str(me.get("user_id") or me.get("id"))
    forged = builders.stream_token(
        CAMERA, pod_id=tenant.pod_id, user_id=user_id, exp_in=60, secret="wrong-secret"
    )
    assert get(CAMERA, forged).status_code == 401
    stranger = builders.stream_token(
        CAMERA,
        pod_id=tenant.pod_id,
        user_id=str(uuid.uuid4()),
        exp_in=60,
        secret=tenant.stream_token_secret,
    )
    assert get(CAMERA, stranger).status_code == 401
    assert get(CAMERA, "garbage").status_code == 401
    expired = builders.stream_token(
        CAMERA, pod_id=tenant.pod_id, user_id=user_id, exp_in=-1, secret=tenant.stream_token_secret
    )
    r = get(CAMERA, expired)
    assert r.status_code == 401 and r.json()["error"] == "stream_token_expired"
    r = httpx.get(f"{url}/segment/..%2Fetc", params={"camera_id": CAMERA}, headers=session)
    assert r.status_code == 404
    r = httpx.get(f"{url}/segment/.hidden", params={"camera_id": CAMERA}, headers=session)
    assert r.status_code == 404 and r.json()["error"] == "not_found"
