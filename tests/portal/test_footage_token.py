"""``POST /api/footage-token`` and the footage relay routes' authorisation — on SQLite and
PostgreSQL: the token's claims and URLs, bad ranges (400 JSON), the role matrix (viewer 403,
manager and admin allowed), scopes (a live token is refused on footage, a footage token on
live), a footage token held to its range, and the ``footage_view`` audit row."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from platebridge.core.tokens import verify_stream_token
from tests.portal.footage_support import add_user, footage_token
from tests.portal.streaming_support import PortalProc, heartbeat, portal_process, stream_token
from tests.support.portal import SeededCompany, seed_company
from tests.support.procs import free_port

pytestmark = pytest.mark.e2e  # a real portal process (tests/conftest.py guards it)

CAMERA = "gate-camera-1"
NOW = time.time()
START, END = NOW - 3600, NOW - 3000
#: Every footage relay route, with valid parameters.
RELAYS: list[tuple[str, dict[str, Any]]] = [
    ("", {"from": START, "to": END}),
    ("/media", {"start": START, "duration": 10}),
    ("/export", {"from": START, "to": START + 60}),
    ("/vod.m3u8", {"from": START, "to": END}),
]


@pytest.fixture(scope="module")
def portal(db_url: str) -> Iterator[PortalProc]:
    env = {"PLATEBRIDGE_STREAM_CONNECT_TIMEOUT": "2", "PLATEBRIDGE_STREAM_READ_TIMEOUT": "2"}
    with portal_process(db_url, env) as p:
        yield p


@pytest.fixture(scope="module")
def tenant(portal: PortalProc) -> SeededCompany:
    seeded = seed_company(portal.db_url)
    heartbeat(portal.url, seeded, "127.0.0.1", free_port())  # nothing listens: 502, fast
    return seeded


@pytest.fixture(scope="module")
def users(portal: PortalProc, tenant: SeededCompany) -> dict[str, dict[str, str]]:
    return {
        "admin": portal.login(tenant.email, tenant.password),
        "manager": add_user(portal.url, portal.db_url, tenant, "manager"),
        "viewer": add_user(portal.url, portal.db_url, tenant, "viewer"),
    }


def relay(portal: PortalProc, pod_id: str, suffix: str, params: dict[str, Any], **kw: Any) -> Any:
    query = {"camera_id": CAMERA, **params}
    return httpx.get(f"{portal.url}/api/footage/{pod_id}{suffix}", params=query, timeout=15, **kw)


def test_token_contract(
    portal: PortalProc, tenant: SeededCompany, users: dict[str, dict[str, str]]
) -> None:
    r = footage_token(portal.url, users["manager"], tenant.pod_id, CAMERA, START, END)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    data = r.json()
    assert set(data) == {
        "token", "expires_at", "method", "recordings_url", "media_url", "export_url",
    }  # fmt: skip
    assert data["method"] == "proxy"
    claims = verify_stream_token(data["token"], tenant.stream_token_secret)
    assert claims.scope == "footage" and claims.covers(START, END)
    assert claims.start is not None and claims.end is not None
    assert claims.end - claims.start <= END - START + 2  # whole seconds around the range
    assert (claims.pod_id, claims.camera_id) == (tenant.pod_id, CAMERA)
    base = f"/api/footage/{tenant.pod_id}"
    assert data["recordings_url"].startswith(f"{base}?camera_id={CAMERA}&token=")
    assert data["media_url"].startswith(f"{base}/media?camera_id={CAMERA}&token=")
    assert data["export_url"].startswith(f"{base}/export?camera_id={CAMERA}&token=")
    assert "from=" in data["recordings_url"] and "to=" in data["export_url"]


def test_direct_mode_urls_go_to_the_pod(portal: PortalProc, db_url: str) -> None:
    seeded = seed_company(db_url)
    port = free_port()
    heartbeat(portal.url, seeded, "127.0.0.1", port)
    admin = portal.login(seeded.email, seeded.password)
    r = httpx.patch(
        f"{portal.url}/api/pods/{seeded.pod_id}", json={"stream_mode": "direct"}, headers=admin
    )
    assert r.status_code == 200, r.text
    data = footage_token(portal.url, admin, seeded.pod_id, CAMERA, START, END).json()
    assert data["method"] == "direct"
    pod = f"http://127.0.0.1:{port}/recordings/{CAMERA}"
    assert data["recordings_url"].startswith(f"{pod}?token=")
    assert data["media_url"].startswith(f"{pod}/media?token=")
    assert data["export_url"].startswith(f"{pod}/export?token=")


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (END, START),  # reversed
        (START, START),  # empty
        (START, START + 7 * 86400 + 1),  # longer than 7 days
        (-10, 100),  # before 1970
        (START, 1e300),  # absurd
        ("soon", END),  # not a number
    ],
)
def test_bad_ranges_are_400_json(
    portal: PortalProc,
    tenant: SeededCompany,
    users: dict[str, dict[str, str]],
    start: Any,
    end: Any,
) -> None:
    r = footage_token(portal.url, users["manager"], tenant.pod_id, CAMERA, start, end)
    assert r.status_code in (400, 422), r.text
    assert r.headers["content-type"].startswith("application/json")
    assert set(r.json()) == {"error", "detail"}
    if not isinstance(start, str):
        assert r.status_code == 400 and r.json()["error"] == "bad_request"
    # the relay routes validate the same way, before any POD is asked
    q = {"from": start, "to": end}
    r = relay(portal, tenant.pod_id, "", q, headers=users["manager"])
    assert r.status_code == 400 and r.json()["error"] == "bad_request", r.text


@pytest.mark.parametrize(
    ("suffix", "params"),
    [
        ("/media", {"duration": 10}),  # no start
        ("/media", {"start": START, "duration": 61}),
        ("/media", {"start": START, "duration": 0.5}),
        ("/media", {"start": "nan"}),
        ("/export", {"from": START, "to": START + 1801}),  # longer than 30 min
        ("", {"from": START}),  # no to
    ],
)
def test_bad_relay_parameters_are_400(
    portal: PortalProc,
    tenant: SeededCompany,
    users: dict[str, dict[str, str]],
    suffix: str,
    params: dict[str, Any],
) -> None:
    r = relay(portal, tenant.pod_id, suffix, params, headers=users["manager"])
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "bad_request"


def test_role_matrix(
    portal: PortalProc, tenant: SeededCompany, users: dict[str, dict[str, str]]
) -> None:
    r = footage_token(portal.url, users["viewer"], tenant.pod_id, CAMERA, START, END)
    assert r.status_code == 403 and r.json()["error"] == "forbidden", r.text
    for suffix, params in RELAYS:
        r = relay(portal, tenant.pod_id, suffix, params, headers=users["viewer"])
        assert r.status_code == 403 and r.json()["error"] == "forbidden", (suffix, r.text)
    # live stays allowed for the viewer
    assert stream_token(portal.url, users["viewer"], tenant.pod_id, CAMERA).status_code == 200
    for role in ("admin", "manager"):
        r = footage_token(portal.url, users[role], tenant.pod_id, CAMERA, START, END)
        assert r.status_code == 200, (role, r.text)
        for suffix, params in RELAYS:
            r = relay(portal, tenant.pod_id, suffix, params, headers=users[role])
            # authorised: the portal asks the POD (which does not listen here)
            assert r.status_code == 502 and r.json()["error"] == "upstream_unreachable", (
                role,
                suffix,
                r.text,
            )


def test_scopes_and_range(
    portal: PortalProc, tenant: SeededCompany, users: dict[str, dict[str, str]]
) -> None:
    live = stream_token(portal.url, users["manager"], tenant.pod_id, CAMERA).json()["token"]
    for suffix, params in RELAYS:
        r = relay(portal, tenant.pod_id, suffix, {**params, "token": live})
        assert r.status_code == 403 and r.json()["error"] == "wrong_scope", (suffix, r.text)
        assert live not in r.text
    footage = footage_token(portal.url, users["manager"], tenant.pod_id, CAMERA, START, END)
    tok = footage.json()["token"]
    # a footage token never watches live (playlist, snapshot)
    for path in ("proxy-stream", "snapshot"):
        r = httpx.get(
            f"{portal.url}/api/pod/{path}/{tenant.pod_id}",
            params={"camera_id": CAMERA, "token": tok},
            timeout=15,
        )
        assert r.status_code == 403 and r.json()["error"] == "wrong_scope", (path, r.text)
    # within its range: authorised (the POD is asked); outside: 403 out_of_range
    r = relay(portal, tenant.pod_id, "/media", {"start": START + 5, "token": tok})
    assert r.status_code == 502, r.text
    for suffix, params in [
        ("/media", {"start": END + 1}),
        ("/media", {"start": START - 30}),
        ("", {"from": START - 60, "to": END}),
        ("/export", {"from": END + 10, "to": END + 70}),
    ]:
        r = relay(portal, tenant.pod_id, suffix, {**params, "token": tok})
        assert r.status_code == 403 and r.json()["error"] == "out_of_range", (suffix, r.text)
    # another camera's footage with this token: invalid for it
    r2 = httpx.get(
        f"{portal.url}/api/footage/{tenant.pod_id}/media",
        params={"camera_id": "other-camera", "start": START + 5, "token": tok},
        timeout=15,
    )
    assert r2.status_code in (401, 404), r2.text


def test_a_token_of_a_demoted_user_stops_working(
    portal: PortalProc, tenant: SeededCompany, users: dict[str, dict[str, str]]
) -> None:
    """The capability is checked when the token is used, not only when it was issued."""
    from tests.support.portal import cli_json, login

    email = f"demoted-{int(time.time() * 1000)}@example.test"
    cli_json(
        portal.db_url, "user", "create", "--company", tenant.company_id, "--email", email,
        "--password", "pw-demoted-123456", "--role", "manager",
    )  # fmt: skip
    auth = login(portal.url, email, "pw-demoted-123456")
    tok = footage_token(portal.url, auth, tenant.pod_id, CAMERA, START, END).json()["token"]
    users_list = httpx.get(f"{portal.url}/api/users", headers=users["admin"], timeout=15).json()
    items = users_list["users"] if isinstance(users_list, dict) else users_list
    user_id = next(u["id"] for u in items if u["email"] == email)
    r = httpx.patch(
        f"{portal.url}/api/users/{user_id}", json={"role": "viewer"}, headers=users["admin"]
    )
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 15  # the access cache may remember it a little while
    while True:
        r = relay(portal, tenant.pod_id, "/media", {"start": START + 5, "token": tok})
        if r.status_code == 403 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert r.status_code == 403 and r.json()["error"] == "forbidden", r.text


def test_issue_is_audited_with_its_range(
    portal: PortalProc, tenant: SeededCompany, users: dict[str, dict[str, str]]
) -> None:
    r = footage_token(portal.url, users["manager"], tenant.pod_id, CAMERA, START, END)
    assert r.status_code == 200
    events = httpx.get(
        f"{portal.url}/api/audit",
        params={"action": "footage_view"},
        headers=users["admin"],
        timeout=15,
    ).json()["events"]
    mine = [e for e in events if e["range_start"] == pytest.approx(START)]
    assert mine, events
    assert mine[0]["method"] == "proxy" and mine[0]["camera_id"] == CAMERA
    assert mine[0]["range_end"] == pytest.approx(END)
    assert mine[0]["user_email"].startswith("manager-")


def test_manager_role_through_the_users_api_cli_and_pages(
    portal: PortalProc, tenant: SeededCompany, users: dict[str, dict[str, str]]
) -> None:
    import re

    from tests.support.portal import cli_json

    admin = users["admin"]
    email = f"invited-{int(time.time() * 1000)}@example.test"
    r = httpx.post(
        f"{portal.url}/api/users/invite", json={"email": email, "role": "manager"}, headers=admin
    )
    assert r.status_code == 201, r.text
    listed = httpx.get(f"{portal.url}/api/users", headers=admin).json()["users"]
    invited = next(u for u in listed if u["email"] == email)
    assert invited["role"] == "manager"
    r = httpx.patch(f"{portal.url}/api/users/{invited['id']}", json={"role": "boss"}, headers=admin)
    assert r.status_code == 422  # still only the known roles
    # the page's role form: viewer, then manager again (a browser: cookie + CSRF)
    with httpx.Client(base_url=portal.url, timeout=15) as c:
        r = c.post("/api/auth/login", json={"email": tenant.email, "password": tenant.password})
        assert r.status_code == 200
        page = c.get("/users")
        assert page.status_code == 200 and '<option value="manager"' in page.text
        found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert found
        for role in ("viewer", "manager"):
            r = c.post(
                f"/users/{invited['id']}/role", data={"role": role, "csrf_token": found.group(1)}
            )
            assert r.status_code in (200, 303), r.text[:300]
            listed = httpx.get(f"{portal.url}/api/users", headers=admin).json()["users"]
            assert next(u for u in listed if u["email"] == email)["role"] == role
    # the CLI (add_user made managers already): the role shows in its JSON
    shown = cli_json(portal.db_url, "user", "show", "--user", email)
    assert shown["role"] == "manager"
