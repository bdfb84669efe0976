"""SSRF with a narrow allow-list: only ``127.0.0.2/32`` is a POD network. A pod that reports
127.0.0.1 — where a socket really listens — is refused on every proxy route without that
socket seeing a connection; the same pod reporting 127.0.0.2 is connected to (positive control:
the witness and the proxy work, the refusal is the allow-list's doing)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.portal.streaming_support import (
    PortalProc,
    Witness,
    heartbeat,
    portal_process,
    stream_token,
)
from tests.support.portal import new_sqlite_url, seed_company

pytestmark = pytest.mark.e2e  # a real portal process (tests/conftest.py guards it)

READ_TIMEOUT = 1.5


@pytest.fixture(scope="module")
def narrow_portal() -> Iterator[PortalProc]:
    env = {
        "PLATEBRIDGE_POD_NETWORKS": "127.0.0.2/32",
        "PLATEBRIDGE_STREAM_CONNECT_TIMEOUT": "1",
        "PLATEBRIDGE_STREAM_READ_TIMEOUT": str(READ_TIMEOUT),
    }
    with portal_process(new_sqlite_url(), env) as p:
        yield p


def _proxy_routes(p: PortalProc, pod_id: str, session: dict[str, str]) -> list[httpx.Response]:
    params = {"camera_id": "gate-camera-1"}
    base = f"{p.url}/api/pod"
    return [
        httpx.get(f"{base}/proxy-stream/{pod_id}", params=params, headers=session, timeout=10),
        httpx.get(f"{base}/snapshot/{pod_id}", params=params, headers=session, timeout=10),
        httpx.get(
            f"{base}/proxy-stream/{pod_id}/segment/seg_1.ts",
            params=params,
            headers=session,
            timeout=10,
        ),
    ]


def test_loopback_outside_a_narrow_allow_list_is_refused_without_connecting(
    narrow_portal: PortalProc,
) -> None:
    p = narrow_portal
    seeded = seed_company(p.db_url)
    witness = Witness("127.0.0.1")
    try:
        heartbeat(p.url, seeded, "127.0.0.1", witness.port)
        session = p.login(seeded.email, seeded.password)
        r = stream_token(p.url, session, seeded.pod_id, "gate-camera-1")
        assert r.status_code == 409 and r.json()["error"] == "pod_address_refused", r.text
        for r in _proxy_routes(p, seeded.pod_id, session):
            assert r.status_code == 409, r.text
            assert r.json()["error"] == "pod_address_refused"
        time.sleep(0.2)
        assert witness.attempts() == 0
    finally:
        witness.close()


def test_the_allowed_address_is_connected_to(narrow_portal: PortalProc) -> None:
    """Positive control: same routes, the pod at 127.0.0.2 — the witness there sees the proxy
    connect (and, never answered, the proxy gives up with 504 within its read timeout)."""
    p = narrow_portal
    seeded = seed_company(p.db_url)
    witness = Witness("127.0.0.2")
    try:
        heartbeat(p.url, seeded, "127.0.0.2", witness.port)
        session = p.login(seeded.email, seeded.password)
        assert stream_token(p.url, session, seeded.pod_id, "gate-camera-1").status_code == 200
        start = time.monotonic()
        r = httpx.get(
            f"{p.url}/api/pod/proxy-stream/{seeded.pod_id}",
            params={"camera_id": "gate-camera-1"},
            headers=session,
            timeout=10,
        )
        assert r.status_code == 504, r.text
        assert time.monotonic() - start < READ_TIMEOUT + 3
        assert witness.attempts() >= 1
    finally:
        witness.close()
