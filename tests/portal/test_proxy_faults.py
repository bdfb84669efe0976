"""The proxy against PODs that are down, hang or stream slowly, token renewal past a short
lifetime, and every SSRF form refused without a connection attempt. One real portal process
(SQLite) per setting; the misbehaving PODs are scripted servers on loopback."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.portal.relay_upstreams import LoopThread
from tests.portal.streaming_support import (
    FakePod,
    HangingPod,
    PortalProc,
    Witness,
    heartbeat,
    playlist_uris,
    portal_process,
    stream_token,
    timed,
)
from tests.support.portal import SeededCompany, new_sqlite_url, seed_company
from tests.support.procs import free_port, wait_until

pytestmark = pytest.mark.e2e  # a real portal process (tests/conftest.py guards it)

CONNECT_TIMEOUT = 1.0
READ_TIMEOUT = 1.5
TOKEN_TTL = 3


@pytest.fixture(scope="module")
def loop() -> Iterator[LoopThread]:
    lt = LoopThread()
    yield lt
    lt.stop()


@pytest.fixture(scope="module")
def portal() -> Iterator[PortalProc]:
    env = {
        "PLATEBRIDGE_STREAM_CONNECT_TIMEOUT": str(CONNECT_TIMEOUT),
        "PLATEBRIDGE_STREAM_READ_TIMEOUT": str(READ_TIMEOUT),
        "PLATEBRIDGE_STREAM_TOKEN_TTL": str(TOKEN_TTL),
    }
    with portal_process(new_sqlite_url(), env) as p:
        yield p


@pytest.fixture
def tenant(portal: PortalProc) -> SeededCompany:
    return seed_company(portal.db_url)


@pytest.fixture(scope="module")
def fake_pod(loop: LoopThread) -> Iterator[FakePod]:
    pod = FakePod(loop)
    yield pod
    pod.close()


def auth(portal: PortalProc, tenant: SeededCompany) -> dict[str, str]:
    return portal.login(tenant.email, tenant.password)


def proxy_get(portal: PortalProc, tenant: SeededCompany, camera: str = "gate-camera-1") -> Any:
    return httpx.get(
        f"{portal.url}/api/pod/proxy-stream/{tenant.pod_id}",
        params={"camera_id": camera},
        headers=auth(portal, tenant),
        timeout=30,
    )


def test_pod_down_is_a_fast_json_502(portal: PortalProc, tenant: SeededCompany) -> None:
    heartbeat(portal.url, tenant, "127.0.0.1", free_port())  # nothing listens there
    r, elapsed = timed(proxy_get, portal, tenant)
    assert r.status_code == 502
    assert r.json()["error"] == "upstream_unreachable"
    assert elapsed < 2.0


def test_pod_hanging_is_a_json_504_within_the_timeout(
    portal: PortalProc, tenant: SeededCompany
) -> None:
    hanging = HangingPod()
    try:
        heartbeat(portal.url, tenant, "127.0.0.1", hanging.port)
        r, elapsed = timed(proxy_get, portal, tenant)
        assert r.status_code == 504
        assert r.json() == {"error": "upstream_timeout", "detail": r.json()["detail"]}
        # whole playlist deadline: connect + 2 x read, plus process/loop slack
        assert READ_TIMEOUT <= elapsed < CONNECT_TIMEOUT + 2 * READ_TIMEOUT + 2.0
        seg = f"{portal.url}/api/pod/proxy-stream/{tenant.pod_id}/segment/seg_1.ts"
        r, elapsed = timed(
            httpx.get,
            seg,
            params={"camera_id": "gate-camera-1"},
            headers=auth(portal, tenant),
            timeout=30,
        )
        assert r.status_code == 504 and r.json()["error"] == "upstream_timeout"
        assert elapsed < CONNECT_TIMEOUT + READ_TIMEOUT + 2.0
    finally:
        hanging.close()


def test_viewer_disconnect_mid_segment_closes_the_upstream(
    portal: PortalProc, tenant: SeededCompany, fake_pod: FakePod
) -> None:
    heartbeat(portal.url, tenant, "127.0.0.1", fake_pod.port, cameras=("slow-cam",))
    url = f"{portal.url}/api/pod/proxy-stream/{tenant.pod_id}/segment/seg_1.ts"
    with (
        httpx.Client(timeout=10) as client,
        client.stream(
            "GET", url, params={"camera_id": "slow-cam"}, headers=auth(portal, tenant)
        ) as r,
    ):
        assert r.status_code == 200
        assert r.headers["content-type"] == "video/mp2t"
        got = 0
        for chunk in r.iter_bytes():
            got += len(chunk)
            if got > 256 * 1024:
                break  # the viewer leaves mid-segment
    assert fake_pod.slow.opened.is_set()
    # the portal closed its upstream request: the POD sees the connection end
    assert fake_pod.slow.closed.wait(10), "upstream connection still open after disconnect"
    sent = fake_pod.slow.sent
    time.sleep(0.5)
    assert fake_pod.slow.sent == sent  # nothing is pulled from the POD any more


def test_proxy_never_forwards_the_viewer_token(
    portal: PortalProc, tenant: SeededCompany, fake_pod: FakePod
) -> None:
    heartbeat(portal.url, tenant, "127.0.0.1", fake_pod.port)
    tok = stream_token(portal.url, auth(portal, tenant), tenant.pod_id, "gate-camera-1").json()
    r = httpx.get(portal.url + tok["proxy_url"], timeout=10)
    assert r.status_code == 200, r.text
    assert tok["token"] not in fake_pod.tokens
    assert "POD-SIDE" not in r.text and str(fake_pod.port) not in r.text
    uris = playlist_uris(r.text)
    assert len(uris) == 3
    for uri in uris:
        assert uri.startswith(f"/api/pod/proxy-stream/{tenant.pod_id}/segment/seg_")
        assert f"token={tok['token']}" in uri
    seg = httpx.get(portal.url + uris[-1], timeout=10)
    assert seg.status_code == 200 and seg.content.startswith(b"\x47")
    snap = httpx.get(
        f"{portal.url}/api/pod/snapshot/{tenant.pod_id}",
        params={"camera_id": "gate-camera-1", "token": tok["token"]},
        timeout=10,
    )
    assert snap.status_code == 200 and snap.headers["content-type"] == "image/jpeg"
    assert snap.content.startswith(b"\xff\xd8")


def _expiry(token_response: dict[str, Any]) -> float:
    return datetime.fromisoformat(token_response["expires_at"].replace("Z", "+00:00")).timestamp()


def test_token_renewal_keeps_a_viewer_watching_past_the_lifetime(
    portal: PortalProc, tenant: SeededCompany, fake_pod: FakePod
) -> None:
    """A scripted HLS client fetches playlist + newest segment every second for 3x the token
    lifetime, renewing at 2/3 of it; it never sees a 401. A client that never renews does."""
    heartbeat(portal.url, tenant, "127.0.0.1", fake_pod.port)
    session = auth(portal, tenant)

    def new_token() -> dict[str, Any]:
        r = stream_token(portal.url, session, tenant.pod_id, "gate-camera-1")
        assert r.status_code == 200, r.text
        data: dict[str, Any] = r.json()
        assert data["expires_in"] >= TOKEN_TTL - 1
        return data

    first = new_token()
    current, issued_at, renewals, statuses = first, time.time(), 0, []
    stale = first["token"]
    end = time.monotonic() + 3 * TOKEN_TTL
    with httpx.Client(timeout=10) as client:  # no cookies, no headers: like ffmpeg or Safari
        while time.monotonic() < end:
            if time.time() >= issued_at + (2 / 3) * (_expiry(current) - issued_at):
                current, issued_at = new_token(), time.time()
                renewals += 1
            playlist = client.get(
                f"{portal.url}/api/pod/proxy-stream/{tenant.pod_id}",
                params={"camera_id": "gate-camera-1", "token": current["token"]},
            )
            statuses.append(playlist.status_code)
            if playlist.status_code == 200:
                segment = client.get(portal.url + playlist_uris(playlist.text)[-1])
                statuses.append(segment.status_code)
            time.sleep(1.0)
        assert statuses and set(statuses) == {200}, statuses
        assert renewals >= 2
        # the client that never renewed: its (first) token is refused now
        r = client.get(
            f"{portal.url}/api/pod/proxy-stream/{tenant.pod_id}",
            params={"camera_id": "gate-camera-1", "token": stale},
        )
        assert r.status_code == 401
        assert r.json()["error"] == "stream_token_expired"


def test_old_and_new_token_both_work_until_their_own_expiry(
    portal: PortalProc, tenant: SeededCompany, fake_pod: FakePod
) -> None:
    heartbeat(portal.url, tenant, "127.0.0.1", fake_pod.port)
    session = auth(portal, tenant)
    old = stream_token(portal.url, session, tenant.pod_id, "gate-camera-1").json()
    new = stream_token(portal.url, session, tenant.pod_id, "gate-camera-1").json()
    for tok in (old, new):
        assert httpx.get(portal.url + tok["proxy_url"], timeout=10).status_code == 200
    wait_until(lambda: time.time() > _expiry(new) + 0.1, timeout=TOKEN_TTL + 3, what="expiry")
    for tok in (old, new):
        r = httpx.get(portal.url + tok["proxy_url"], timeout=10)
        assert r.status_code == 401


# --- SSRF: refused without a connection attempt --------------------------------------------------


@pytest.fixture(scope="module")
def strict_portal() -> Iterator[PortalProc]:
    """A portal whose POD networks do not include loopback."""
    with portal_process(new_sqlite_url(), {"PLATEBRIDGE_POD_NETWORKS": "10.0.0.0/8"}) as p:
        yield p


# (address the pod reports, portal) — loopback addresses are refused by the strict portal only;
# the rest even by the portal that allows 127.0.0.0/8.
SSRF_CASES = [
    ("169.254.169.254", "portal"),  # cloud metadata (link-local)
    ("::ffff:169.254.169.254", "portal"),  # IPv4-mapped metadata
    ("0.0.0.0", "portal"),  # unspecified (Linux connects it to localhost!)
    ("::", "portal"),
    ("::ffff:0.0.0.0", "portal"),
    ("8.8.8.8", "portal"),  # public, not listed
    ("224.0.0.1", "portal"),  # multicast
    ("ff02::1", "portal"),
    ("127.0.0.1", "strict_portal"),  # loopback when not allowed
    ("::ffff:127.0.0.1", "strict_portal"),
    ("::1", "strict_portal"),
]


@pytest.mark.parametrize(("address", "which"), SSRF_CASES)
def test_ssrf_forms_are_refused_without_connecting(
    address: str, which: str, request: pytest.FixtureRequest
) -> None:
    p: PortalProc = request.getfixturevalue(which)
    seeded = seed_company(p.db_url)
    v4 = Witness("127.0.0.1")
    try:
        v6 = Witness("::1", v4.port)
    except OSError:
        v6 = None
    try:
        heartbeat(p.url, seeded, address, v4.port)
        session = p.login(seeded.email, seeded.password)
        r = stream_token(p.url, session, seeded.pod_id, "gate-camera-1")
        assert r.status_code == 409, r.text
        assert r.json()["error"] == "pod_address_refused"
        for path in ("proxy-stream", "snapshot"):
            r = httpx.get(
                f"{p.url}/api/pod/{path}/{seeded.pod_id}",
                params={"camera_id": "gate-camera-1"},
                headers=session,
                timeout=10,
            )
            assert r.status_code == 409 and r.json()["error"] == "pod_address_refused"
        r = httpx.get(
            f"{p.url}/api/pod/proxy-stream/{seeded.pod_id}/segment/seg_1.ts",
            params={"camera_id": "gate-camera-1"},
            headers=session,
            timeout=10,
        )
        assert r.status_code == 409
        pods = httpx.get(f"{p.url}/api/pods", headers=session, timeout=10).json()["pods"]
        assert pods[0]["unavailable_reason"]
        time.sleep(0.2)
        assert v4.attempts() == 0
        assert v6 is None or v6.attempts() == 0
    finally:
        v4.close()
        if v6 is not None:
            v6.close()


def test_non_literal_addresses_never_reach_the_database(portal: PortalProc) -> None:
    seeded = seed_company(portal.db_url)
    for address in ("2852039166", "0xa9fea9fe", "0251.0376.0251.0376", "169.254.43518", "pod.lan"):
        r = httpx.post(
            f"{portal.url}/api/pod/heartbeat",
            headers=seeded.pod_auth,
            json={"pod_id": seeded.pod_id, "ip_address": address, "cameras": []},
            timeout=10,
        )
        assert r.status_code == 422, (address, r.text)
