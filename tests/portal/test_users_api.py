"""The user lifecycle through the JSON API (docs/portal.md, Users lifecycle), SQLite and
PostgreSQL, the portal in-process: invite (shown once without SMTP, mailed through a real SMTP
server with it), accept, list, role, disable, enable, delete, reset password, own password,
the last-admin rule, the audit trail."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.support.inprocess import AppPortal, app_portal
from tests.support.portal import SeededCompany, seed_company, sql
from tests.support.smtp import SmtpServer, invite_link

NEW_PASSWORD = "a-long-new-password-1"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["token"][0]


def new_email(tag: str = "user") -> str:
    return f"{tag}-{uuid.uuid4().hex[:8]}@example.test"


def admin_auth(portal: AppPortal, tenant: SeededCompany) -> dict[str, str]:
    return portal.login(tenant.email, tenant.password)


def invite(
    portal: AppPortal, auth: dict[str, str], email: str, role: str = "viewer"
) -> dict[str, Any]:
    r = portal.client.post("/api/users/invite", headers=auth, json={"email": email, "role": role})
    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    body: dict[str, Any] = r.json()
    return body


def accept(portal: AppPortal, token: str, password: str = NEW_PASSWORD) -> httpx.Response:
    return portal.client.post("/api/invites/accept", json={"token": token, "password": password})


def add_user(portal: AppPortal, auth: dict[str, str], role: str = "viewer") -> tuple[str, str]:
    """An active user (invited and accepted): id and e-mail."""
    email = new_email(role)
    body = invite(portal, auth, email, role)
    assert accept(portal, token_of(body["link"]["url"])).status_code == 200
    return body["user"]["id"], email


def changes(db_url: str, company_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    rows = sql(
        db_url,
        "SELECT action, actor, detail FROM admin_changes WHERE company_id = :c ORDER BY at",
        c=company_id.replace("-", "") if "sqlite" in db_url else company_id,
    )
    return [(a, actor, json.loads(d)) for a, actor, d in rows]


def test_invite_without_smtp_shows_the_link_once_and_accepting_signs_in(
    app_portal: AppPortal, tenant: SeededCompany, db_url: str
) -> None:
    auth = admin_auth(app_portal, tenant)
    email = new_email("Invited")
    body = invite(app_portal, auth, email)
    assert body["user"]["email"] == email.lower() and body["user"]["status"] == "invited"
    assert body["link"]["sent_to"] is None and body["link"]["purpose"] == "invite"
    url = body["link"]["url"]
    assert url.startswith("http://portal.test/invite?token=")
    token = token_of(url)
    # Stored hashed: the token is nowhere in the database, nor in the trail.
    hashes = [bytes(h) for (h,) in sql(db_url, "SELECT token_hash FROM user_links")]
    assert hashlib.sha256(token.encode()).digest() in hashes
    assert all(token not in json.dumps(c) for c in changes(db_url, tenant.company_id))
    listed = app_portal.client.get("/api/users", headers=auth).json()["users"]
    assert {u["email"]: u["status"] for u in listed}[email.lower()] == "invited"
    # No password yet: no sign-in.
    r = app_portal.client.post("/api/auth/login", json={"email": email, "password": "anything"})
    assert r.status_code == 401
    assert accept(app_portal, token, "short").json()["error"] == "invalid_password"
    r = accept(app_portal, token)
    assert r.status_code == 200, r.text
    me = app_portal.client.get("/api/auth/me", headers=bearer(r.json()["access_token"])).json()
    assert (me["email"], me["role"]) == (email.lower(), "viewer")
    assert "pb_session" in r.headers["set-cookie"]
    # Single use.
    again = accept(app_portal, token)
    assert (again.status_code, again.json()["error"]) == (404, "invalid_link")
    r = app_portal.client.post("/api/auth/login", json={"email": email, "password": NEW_PASSWORD})
    assert r.status_code == 200
    actions = [(a, actor) for a, actor, _ in changes(db_url, tenant.company_id)]
    assert ("user.invite", tenant.email) in actions
    assert ("user.accept_invite", email.lower()) in actions


def test_expired_and_unknown_links_are_one_answer(
    app_portal: AppPortal, tenant: SeededCompany, db_url: str
) -> None:
    auth = admin_auth(app_portal, tenant)
    body = invite(app_portal, auth, new_email())
    sql(db_url, "UPDATE user_links SET expires_at = created_at")
    expired = accept(app_portal, token_of(body["link"]["url"]))
    unknown = accept(app_portal, "x" * 43)
    assert expired.status_code == unknown.status_code == 404
    assert expired.json() == unknown.json()


def test_inviting_again_replaces_the_link_and_an_existing_address_is_409(
    app_portal: AppPortal, tenant: SeededCompany
) -> None:
    auth = admin_auth(app_portal, tenant)
    email = new_email()
    first = invite(app_portal, auth, email)
    second = invite(app_portal, auth, email, "admin")
    assert second["user"]["id"] == first["user"]["id"] and second["user"]["role"] == "admin"
    assert accept(app_portal, token_of(first["link"]["url"])).status_code == 404
    assert accept(app_portal, token_of(second["link"]["url"])).status_code == 200
    # Now active: inviting the address again (or another company's admin) is refused alike.
    other = seed_company(app_portal.db_url)
    for address in (email, other.email):
        r = app_portal.client.post("/api/users/invite", headers=auth, json={"email": address})
        assert (r.status_code, r.json()["error"]) == (409, "user_exists")
        assert other.company_id not in r.text


def test_role_disable_enable_delete_and_the_last_admin(
    app_portal: AppPortal, tenant: SeededCompany, db_url: str
) -> None:
    auth = admin_auth(app_portal, tenant)
    me = app_portal.client.get("/api/auth/me", headers=auth).json()
    # The only admin can neither demote, disable nor delete themselves.
    for method, path, body in (
        ("PATCH", "", {"role": "viewer"}),
        ("POST", "/disable", None),
        ("DELETE", "", None),
    ):
        r = app_portal.client.request(
            method, f"/api/users/{me['id']}{path}", headers=auth, json=body
        )
        assert (r.status_code, r.json()["error"]) == (409, "last_admin"), (method, path)
        assert "last active admin" in r.json()["detail"]
    viewer_id, viewer_email = add_user(app_portal, auth)
    r = app_portal.client.patch(f"/api/users/{viewer_id}", headers=auth, json={"role": "admin"})
    assert r.json()["role"] == "admin"
    # Two admins now: the first may step down.
    r = app_portal.client.patch(f"/api/users/{me['id']}", headers=auth, json={"role": "viewer"})
    assert r.status_code == 200 and r.json()["role"] == "viewer"
    r = app_portal.client.get("/api/users", headers=auth)
    assert (r.status_code, r.json()["error"]) == (403, "forbidden")  # no longer an admin
    new_admin = app_portal.client.post(
        "/api/auth/login", json={"email": viewer_email, "password": NEW_PASSWORD}
    ).json()["access_token"]
    adm = bearer(new_admin)
    r = app_portal.client.patch(f"/api/users/{me['id']}", headers=adm, json={"role": "admin"})
    assert r.json()["role"] == "admin"
    # Disable: sessions end at once, sign-in refused, then enabled again.
    r = app_portal.client.post(f"/api/users/{viewer_id}/disable", headers=auth)
    assert r.status_code == 200 and r.json()["status"] == "disabled"
    assert app_portal.client.get("/api/auth/me", headers=adm).status_code == 401
    r = app_portal.client.post(
        "/api/auth/login", json={"email": viewer_email, "password": NEW_PASSWORD}
    )
    assert (r.status_code, r.json()["error"]) == (403, "account_disabled")
    r = app_portal.client.post(f"/api/users/{viewer_id}/enable", headers=auth)
    assert r.json()["status"] == "active"
    assert app_portal.client.get("/api/auth/me", headers=adm).status_code == 401  # stays ended
    r = app_portal.client.post(
        "/api/auth/login", json={"email": viewer_email, "password": NEW_PASSWORD}
    )
    assert r.status_code == 200
    # Delete.
    r = app_portal.client.delete(f"/api/users/{viewer_id}", headers=auth)
    assert r.json() == {"ok": True}
    r = app_portal.client.get(f"/api/users/{viewer_id}", headers=auth)
    assert (r.status_code, r.json()["error"]) == (404, "not_found")
    r = app_portal.client.post(
        "/api/auth/login", json={"email": viewer_email, "password": NEW_PASSWORD}
    )
    assert r.status_code == 401
    actions = [a for a, _, _ in changes(db_url, tenant.company_id)]
    for expected in ("user.role", "user.disable", "user.enable", "user.delete"):
        assert expected in actions


def test_reset_password_keeps_the_old_one_until_the_link_is_used(
    app_portal: AppPortal, tenant: SeededCompany
) -> None:
    auth = admin_auth(app_portal, tenant)
    user_id, email = add_user(app_portal, auth)
    old_session = app_portal.client.post(
        "/api/auth/login", json={"email": email, "password": NEW_PASSWORD}
    ).json()["access_token"]
    r = app_portal.client.post(f"/api/users/{user_id}/reset-password", headers=auth)
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    link = r.json()["link"]
    assert link["purpose"] == "reset"
    assert app_portal.client.get("/api/auth/me", headers=bearer(old_session)).status_code == 200
    r = accept(app_portal, token_of(link["url"]), "another-password-2")
    assert r.status_code == 200
    assert app_portal.client.get("/api/auth/me", headers=bearer(old_session)).status_code == 401
    r = app_portal.client.post("/api/auth/login", json={"email": email, "password": NEW_PASSWORD})
    assert r.status_code == 401
    r = app_portal.client.post(
        "/api/auth/login", json={"email": email, "password": "another-password-2"}
    )
    assert r.status_code == 200


def test_own_password_needs_the_current_one_and_ends_the_other_sessions(
    app_portal: AppPortal, tenant: SeededCompany
) -> None:
    auth = admin_auth(app_portal, tenant)
    _, email = add_user(app_portal, auth)

    def session() -> dict[str, str]:
        r = app_portal.client.post(
            "/api/auth/login", json={"email": email, "password": NEW_PASSWORD}
        )
        return bearer(r.json()["access_token"])

    mine, other = session(), session()
    r = app_portal.client.post(
        "/api/account/password",
        headers=mine,
        json={"current_password": "wrong-password", "new_password": "changed-password-3"},
    )
    assert (r.status_code, r.json()["error"]) == (403, "wrong_password")
    r = app_portal.client.post(
        "/api/account/password",
        headers=mine,
        json={"current_password": NEW_PASSWORD, "new_password": "short"},
    )
    assert (r.status_code, r.json()["error"]) == (422, "invalid_password")
    r = app_portal.client.post(
        "/api/account/password",
        headers=mine,
        json={"current_password": NEW_PASSWORD, "new_password": "changed-password-3"},
    )
    assert r.json() == {"ok": True}
    assert app_portal.client.get("/api/auth/me", headers=mine).status_code == 200
    assert app_portal.client.get("/api/auth/me", headers=other).status_code == 401
    r = app_portal.client.post(
        "/api/auth/login", json={"email": email, "password": "changed-password-3"}
    )
    assert r.status_code == 200


def test_viewers_are_refused_and_other_companies_users_are_404(
    app_portal: AppPortal, tenant: SeededCompany
) -> None:
    auth = admin_auth(app_portal, tenant)
    _, viewer_email = add_user(app_portal, auth)
    viewer = app_portal.login(viewer_email, NEW_PASSWORD)
    other = seed_company(app_portal.db_url)
    other_auth = app_portal.login(other.email, other.password)
    other_id = app_portal.client.get("/api/auth/me", headers=other_auth).json()["id"]
    assert app_portal.client.get("/api/users", headers=viewer).status_code == 403
    r = app_portal.client.post("/api/users/invite", headers=viewer, json={"email": new_email()})
    assert r.status_code == 403
    for method, path in (
        ("GET", ""),
        ("POST", "/disable"),
        ("POST", "/enable"),
        ("POST", "/reset-password"),
        ("DELETE", ""),
    ):
        r = app_portal.client.request(method, f"/api/users/{other_id}{path}", headers=auth)
        ghost = app_portal.client.request(method, f"/api/users/{uuid.uuid4()}{path}", headers=auth)
        assert r.status_code == ghost.status_code == 404, (method, path)
        assert r.json() == ghost.json()
    listed = app_portal.client.get("/api/users", headers=auth).json()["users"]
    assert other.email not in {u["email"] for u in listed}
    assert app_portal.client.get("/api/auth/me", headers=other_auth).status_code == 200


def test_cookie_calls_need_the_csrf_token(app_portal: AppPortal, tenant: SeededCompany) -> None:
    r = app_portal.client.post(
        "/api/auth/login", json={"email": tenant.email, "password": tenant.password}
    )
    cookie = {"Cookie": f"pb_session={r.json()['access_token']}"}
    r = app_portal.client.post("/api/users/invite", headers=cookie, json={"email": new_email()})
    assert (r.status_code, r.json()["error"]) == (403, "csrf_failed")


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer(login=("portal", "smtp-secret-pw")) as server:
        yield server


@pytest.fixture(scope="module")
def mailing_portal(db_url: str, smtp: SmtpServer) -> Iterator[AppPortal]:
    env = {**smtp.portal_env(), "PLATEBRIDGE_PUBLIC_URL": "https://portal.example.test"}
    with app_portal(db_url, env) as portal:
        yield portal


def test_with_smtp_the_link_is_mailed_not_shown(
    mailing_portal: AppPortal, smtp: SmtpServer, db_url: str
) -> None:
    tenant = seed_company(db_url)
    auth = mailing_portal.login(tenant.email, tenant.password)
    email = new_email("mailed")
    before = len(smtp.messages)
    body = invite(mailing_portal, auth, email, "admin")
    assert body["link"]["url"] is None and body["link"]["sent_to"] == email
    message = smtp.wait_for(before + 1)[before]
    assert message.rcpt_tos == [email]
    assert message.message["From"] == "PlateBridge <portal@example.test>"
    assert message.message["Subject"] == "You are invited to PlateBridge"
    link = invite_link(message)
    assert link.startswith("https://portal.example.test/invite?token=")
    assert token_of(link) not in json.dumps(body)
    r = accept(mailing_portal, token_of(link))
    assert r.status_code == 200
    user_id = body["user"]["id"]
    r = mailing_portal.client.post(f"/api/users/{user_id}/reset-password", headers=auth)
    assert r.json()["link"]["sent_to"] == email
    reset = smtp.wait_for(before + 2)[before + 1]
    assert reset.message["Subject"] == "Reset your PlateBridge password"
    assert (
        accept(mailing_portal, token_of(invite_link(reset)), "mailed-reset-pw").status_code == 200
    )


def test_an_unreachable_smtp_server_is_a_clear_502(db_url: str) -> None:
    env = {"PLATEBRIDGE_SMTP_HOST": "127.0.0.1", "PLATEBRIDGE_SMTP_PORT": "9",
           "PLATEBRIDGE_SMTP_SECURITY": "none"}  # fmt: skip
    tenant = seed_company(db_url)
    with app_portal(db_url, env) as portal:
        auth = portal.login(tenant.email, tenant.password)
        r = portal.client.post("/api/users/invite", headers=auth, json={"email": new_email()})
        assert (r.status_code, r.json()["error"]) == (502, "mail_failed")
        assert "127.0.0.1:9" in r.json()["detail"] and "token" not in r.text
