"""Share links on SQLite and PostgreSQL, without a POD: create (201, the URL once, the secret
stored hashed), list (never the URL), bad values (400), roles (viewer 403, manager allowed),
the public page logged out, expiry and revocation (410), a creator who may no longer share,
the audit rows, and the secret never in the portal's log. (The clip itself through a real
recording POD: ``test_footage_relay_e2e.py``.)"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from platebridge.portal.models import ShareLink
from tests.portal.footage_support import add_user, create_share
from tests.portal.streaming_support import PortalProc, heartbeat, portal_process
from tests.support.portal import SeededCompany, cli_json, in_session, seed_company
from tests.support.procs import free_port

pytestmark = pytest.mark.e2e  # a real portal process (tests/conftest.py guards it)

CAMERA = "gate-camera-1"
START = time.time() - 7200
END = START + 120


@pytest.fixture(scope="module")
def portal(db_url: str) -> Iterator[PortalProc]:
    env = {"PLATEBRIDGE_STREAM_CONNECT_TIMEOUT": "2", "PLATEBRIDGE_STREAM_READ_TIMEOUT": "2"}
    # --log-level info: the access log is on, so the secret-in-logs check has lines to read
    with portal_process(db_url, env, log_level="info") as p:
        yield p


@pytest.fixture(scope="module")
def tenant(portal: PortalProc) -> SeededCompany:
    seeded = seed_company(portal.db_url)
    heartbeat(portal.url, seeded, "127.0.0.1", free_port())  # no POD listens: 502
    return seeded


@pytest.fixture(scope="module")
def users(portal: PortalProc, tenant: SeededCompany) -> dict[str, dict[str, str]]:
    return {
        "admin": portal.login(tenant.email, tenant.password),
        "manager": add_user(portal.url, portal.db_url, tenant, "manager"),
        "viewer": add_user(portal.url, portal.db_url, tenant, "viewer"),
    }


def _share(portal: PortalProc, tenant: SeededCompany, auth: dict[str, str], **kw: Any) -> Any:
    r = create_share(portal.url, auth, tenant.pod_id, CAMERA, START, END, **kw)
    assert r.status_code == 201, r.text
    return r.json()


def _secret(url: str) -> str:
    return url.rsplit("/s/", 1)[1]


def test_create_shows_the_url_once_and_stores_a_hash(
    portal: PortalProc, tenant: SeededCompany, users: dict[str, dict[str, str]]
) -> None:
    before = time.time()
    r = create_share(portal.url, users["manager"], tenant.pod_id, CAMERA, START, END, hours=5)
    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    data = r.json()
    assert set(data) == {"id", "url", "expires_at"}
    assert data["url"].startswith(f"{portal.url}/s/pbs_")
    secret = _secret(data["url"])
    assert len(secret) >= 4 + 22  # at least 128 random bits, base64url
    expires = datetime.fromisoformat(data["expires_at"].replace("Z", "+00:00")).timestamp()
    assert before + 5 * 3600 - 5 <= expires <= time.time() + 5 * 3600 + 5

    async def stored(session: Any) -> ShareLink:
        share: ShareLink = await session.get(ShareLink, uuid.UUID(data["id"]))
        return share

    row = asyncio.run(in_session(portal.db_url, stored))
    assert row.secret_hash == hashlib.sha256(secret.encode()).digest()
    assert (row.clip_start, row.clip_end) == (pytest.approx(START), pytest.approx(END))
    listed = httpx.get(f"{portal.url}/api/shares", headers=users["admin"], timeout=10)
    assert listed.status_code == 200
    mine = next(s for s in listed.json()["shares"] if s["id"] == data["id"])
    assert mine["state"] == "active" and mine["camera_id"] == CAMERA
    assert mine["from"] == pytest.approx(START) and mine["to"] == pytest.approx(END)
    assert secret not in listed.text and "url" not in mine


@pytest.mark.parametrize(
    ("start", "end", "hours"),
    [
        (START, START + 1801, 1),  # a clip longer than 30 min
        (END, START, 1),  # reversed
        (START, START + 0.5, 1),  # shorter than a second
        (START, END, 0),  # no lifetime
        (START, END, 169),  # longer than 7 days
        (-5, END, 1),  # before 1970
    ],
)
def test_bad_values_are_400(
    portal: PortalProc,
    tenant: SeededCompany,
    users: dict[str, dict[str, str]],
    start: float,
    end: float,
    hours: int,
) -> None:
    r = create_share(portal.url, users["manager"], tenant.pod_id, CAMERA, start, end, hours)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "bad_request"


def test_roles(portal: PortalProc, tenant: SeededCompany, users: dict[str, dict[str, str]]) -> None:
    share = _share(portal, tenant, users["admin"])
    viewer = users["viewer"]
    r = create_share(portal.url, viewer, tenant.pod_id, CAMERA, START, END)
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    assert httpx.get(f"{portal.url}/api/shares", headers=viewer).status_code == 403
    r = httpx.delete(f"{portal.url}/api/shares/{share['id']}", headers=viewer)
    assert r.status_code == 403
    # unknown camera, unknown share: 404 for everyone (the viewer too)
    r = create_share(portal.url, viewer, tenant.pod_id, "no-such-camera", START, END)
    assert r.status_code == 404
    r = httpx.delete(
        f"{portal.url}/api/shares/00000000-0000-0000-0000-000000000000", headers=viewer
    )
    assert r.status_code == 404
    # the manager may revoke the admin's link (the company's links)
    r = httpx.delete(f"{portal.url}/api/shares/{share['id']}", headers=users["manager"])
    assert r.status_code == 200 and r.json()["state"] == "revoked"


def test_public_page_logged_out(
    portal: PortalProc, tenant: SeededCompany, users: dict[str, dict[str, str]]
) -> None:
    share = _share(portal, tenant, users["manager"])
    secret = _secret(share["url"])
    page = httpx.get(share["url"], timeout=10)  # no cookie, no header
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"
    assert f'src="/s/{secret}/clip.mp4"' in page.text and "<video" in page.text
    assert tenant.pod_id not in page.text  # the visitor learns nothing but the clip
    # the clip: authorised for the visitor (the portal asks the POD, which is not there)
    r = httpx.get(f"{portal.url}/s/{secret}/clip.mp4", timeout=15)
    assert r.status_code == 502 and r.json()["error"] == "upstream_unreachable", r.text
    r = httpx.get(f"{portal.url}/s/{secret}/media", params={"start": START + 5}, timeout=15)
    assert r.status_code == 502, r.text
    r = httpx.get(f"{portal.url}/s/{secret}/media", params={"start": "never"}, timeout=15)
    assert r.status_code == 400 and r.json()["error"] == "bad_request"
    # unknown links: 404 (page: a plain message, the routes: JSON)
    ghost = "pbs_" + "A" * 43
    for link in (ghost, "pbs_" + "A" * 400):  # a very long one is no link either (no 422)
        r = httpx.get(f"{portal.url}/s/{link}", timeout=10)
        assert r.status_code == 404 and "does not exist" in r.text
        assert r.headers["content-type"].startswith("text/html")
    for path in (f"/s/{ghost}/clip.mp4", f"/s/{ghost}/media", "/s/short/clip.mp4"):
        r = httpx.get(portal.url + path, timeout=10)
        assert r.status_code == 404 and r.json()["error"] == "not_found", path


def _gone(portal: PortalProc, secret: str) -> None:
    page = httpx.get(f"{portal.url}/s/{secret}", timeout=10)
    assert page.status_code == 410 and "<video" not in page.text
    for path in ("clip.mp4", "media"):
        r = httpx.get(f"{portal.url}/s/{secret}/{path}", timeout=10)
        assert r.status_code == 410 and r.json()["error"] == "share_gone", (path, r.text)


def test_revoked_and_expired_links_are_gone(
    portal: PortalProc, tenant: SeededCompany, users: dict[str, dict[str, str]]
) -> None:
    revoked = _share(portal, tenant, users["manager"])
    r = httpx.delete(f"{portal.url}/api/shares/{revoked['id']}", headers=users["manager"])
    assert r.status_code == 200 and r.json()["revoked_at"]
    again = httpx.delete(f"{portal.url}/api/shares/{revoked['id']}", headers=users["manager"])
    assert again.status_code == 200 and again.json()["revoked_at"] == r.json()["revoked_at"]
    _gone(portal, _secret(revoked["url"]))

    expired = _share(portal, tenant, users["manager"])
    past = datetime.fromtimestamp(time.time() - 60, UTC)

    async def expire(session: Any) -> None:
        await session.execute(
            update(ShareLink)
            .where(ShareLink.id == uuid.UUID(expired["id"]))
            .values(expires_at=past)
        )

    asyncio.run(in_session(portal.db_url, expire))
    _gone(portal, _secret(expired["url"]))
    listed = httpx.get(f"{portal.url}/api/shares", headers=users["manager"]).json()["shares"]
    states = {s["id"]: s["state"] for s in listed}
    assert states[revoked["id"]] == "revoked" and states[expired["id"]] == "expired"


def test_a_creator_who_may_no_longer_share_voids_the_link(
    portal: PortalProc, tenant: SeededCompany, users: dict[str, dict[str, str]]
) -> None:
    email = f"sharer-{int(time.time() * 1000)}@example.test"
    cli_json(
        portal.db_url, "user", "create", "--company", tenant.company_id, "--email", email,
        "--password", "pw-sharer-123456", "--role", "manager",
    )  # fmt: skip
    auth = portal.login(email, "pw-sharer-123456")
    share = _share(portal, tenant, auth)
    assert httpx.get(share["url"], timeout=10).status_code == 200
    users_list = httpx.get(f"{portal.url}/api/users", headers=users["admin"]).json()
    items = users_list["users"] if isinstance(users_list, dict) else users_list
    user_id = next(u["id"] for u in items if u["email"] == email)
    r = httpx.patch(
        f"{portal.url}/api/users/{user_id}", json={"role": "viewer"}, headers=users["admin"]
    )
    assert r.status_code == 200, r.text
    _gone(portal, _secret(share["url"]))


def test_audit_and_no_secret_in_the_log(
    portal: PortalProc, tenant: SeededCompany, users: dict[str, dict[str, str]]
) -> None:
    share = _share(portal, tenant, users["manager"])
    secret = _secret(share["url"])
    assert httpx.get(share["url"], timeout=10).status_code == 200
    httpx.get(f"{portal.url}/s/{secret}/clip.mp4", timeout=15)
    httpx.delete(f"{portal.url}/api/shares/{share['id']}", headers=users["manager"])
    events = httpx.get(
        f"{portal.url}/api/audit", params={"limit": 1000}, headers=users["admin"], timeout=10
    ).json()["events"]
    mine = [e for e in events if e["share_id"] == share["id"]]
    actions = sorted(e["action"] for e in mine)
    assert actions.count("share_created") == 1 and actions.count("share_revoked") == 1
    assert actions.count("share_opened") >= 1  # the page (the clip failed: no POD)
    created = next(e for e in mine if e["action"] == "share_created")
    assert created["user_email"].startswith("manager-") and created["camera_id"] == CAMERA
    assert created["range_start"] == pytest.approx(START)
    opened = next(e for e in mine if e["action"] == "share_opened")
    assert opened["user_id"] is None and opened["client_ip"]
    time.sleep(0.5)  # the access log line is written after the response
    log = portal.output()
    assert "/s/pbs_" in log  # the requests were logged ...
    assert secret not in log  # ... without their secret


def test_share_secrets_are_redacted_everywhere() -> None:
    from platebridge.core.redact import redact_text
    from platebridge.portal.services.shares import new_secret

    secret = new_secret()
    line = f'127.0.0.1 - "GET /s/{secret}/clip.mp4 HTTP/1.1" 200'
    assert secret not in redact_text(line) and "/s/pbs_***/clip.mp4" in redact_text(line)
