"""The audit trail: rows written for tokens and viewings, filters, company scoping, admin-only
API and the CLI — on SQLite and PostgreSQL. The proxied viewings run against a scripted POD."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.portal.relay_upstreams import LoopThread
from tests.portal.streaming_support import (
    FakePod,
    PortalProc,
    add_viewer,
    heartbeat,
    portal_process,
    stream_token,
)
from tests.support.portal import SeededCompany, cli_json, seed_company

pytestmark = pytest.mark.e2e  # a real portal process (tests/conftest.py guards it)


@pytest.fixture(scope="module")
def fake_pod() -> Iterator[FakePod]:
    lt = LoopThread()
    pod = FakePod(lt)
    yield pod
    pod.close()
    lt.stop()


@pytest.fixture(scope="module")
def portal(db_url: str) -> Iterator[PortalProc]:
    with portal_process(db_url) as p:
        yield p


def events(portal: PortalProc, headers: dict[str, str], **params: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{portal.url}/api/audit", params=params, headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    rows: list[dict[str, Any]] = r.json()["events"]
    return rows


def test_audit_rows_written_filtered_and_scoped(portal: PortalProc, fake_pod: FakePod) -> None:
    a: SeededCompany = seed_company(portal.db_url)
    b: SeededCompany = seed_company(portal.db_url)  # same pod id in another company
    for seeded in (a, b):
        heartbeat(portal.url, seeded, "127.0.0.1", fake_pod.port, cameras=("cam-1", "cam-2"))
    admin = portal.login(a.email, a.password)
    v_email, v_password = add_viewer(portal.db_url, a)
    viewer = portal.login(v_email, v_password)
    start = datetime.now(UTC) - timedelta(seconds=1)

    tok = stream_token(portal.url, viewer, a.pod_id, "cam-1").json()
    for _ in range(3):  # one viewing: the playlist reloads are not new viewings
        r = httpx.get(portal.url + tok["proxy_url"], timeout=10)
        assert r.status_code == 200, r.text
    assert stream_token(portal.url, admin, a.pod_id, "cam-2").status_code == 200
    r = httpx.get(  # a session viewing (no token) is recorded too
        f"{portal.url}/api/pod/proxy-stream/{a.pod_id}",
        params={"camera_id": "cam-2"},
        headers=admin,
        timeout=10,
    )
    assert r.status_code == 200

    rows = events(portal, admin)
    got = sorted((e["user_email"], e["camera_id"], e["action"], e["method"]) for e in rows)
    assert got == sorted(
        [
            (v_email, "cam-1", "token_issued", "proxy"),
            (v_email, "cam-1", "stream_started", "proxy"),
            (a.email, "cam-2", "token_issued", "proxy"),
            (a.email, "cam-2", "stream_started", "proxy"),
        ]
    )
    first = rows[0]
    assert set(first) == {
        "id", "at", "user_id", "user_email", "pod_id", "camera_id", "action", "method",
        "client_ip", "range_start", "range_end", "share_id",
    }  # fmt: skip
    assert first["range_start"] is None and first["range_end"] is None  # live rows: no range
    assert all(e["client_ip"] == "127.0.0.1" and e["pod_id"] == a.pod_id for e in rows)
    assert [e["at"] for e in rows] == sorted((e["at"] for e in rows), reverse=True)

    # filters
    assert {e["camera_id"] for e in events(portal, admin, camera_id="cam-1")} == {"cam-1"}
    assert {e["user_email"] for e in events(portal, admin, user=v_email.upper())} == {v_email}
    by_id = events(portal, admin, user=rows[0]["user_id"])
    assert by_id and {e["user_id"] for e in by_id} == {rows[0]["user_id"]}
    assert len(events(portal, admin, since=start.isoformat())) == 4
    assert events(portal, admin, until=start.isoformat()) == []
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert events(portal, admin, since=future) == []
    assert len(events(portal, admin, limit="1")) == 1
    assert len(events(portal, admin, action="stream_started")) == 2
    r = httpx.get(f"{portal.url}/api/audit", params={"since": "yesterday"}, headers=admin)
    assert r.status_code == 422

    # scoping: a viewer may not read it; the other company sees none of it
    r = httpx.get(f"{portal.url}/api/audit", headers=viewer, timeout=10)
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    assert events(portal, portal.login(b.email, b.password)) == []
    assert httpx.get(f"{portal.url}/api/audit", timeout=10).status_code == 401

    # the CLI, per company
    out = cli_json(portal.db_url, "audit", "--company", a.company_id, "--camera", "cam-1")
    assert out["company_id"] == a.company_id
    assert sorted(e["action"] for e in out["events"]) == ["stream_started", "token_issued"]
    assert cli_json(portal.db_url, "audit", "--company", b.company_id)["events"] == []
