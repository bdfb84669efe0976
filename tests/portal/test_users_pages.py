"""The users pages (``/users``, ``/account``, ``/invite``) in-process, SQLite and PostgreSQL:
forms with the session's CSRF token, the link shown once, the last-admin refusal as a page,
viewers refused, the public accept page (double-submit CSRF), signed in afterwards."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from html import unescape

import httpx
import pytest

from tests.support.inprocess import AppPortal, app_portal
from tests.support.portal import SeededCompany, seed_company

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
LINK = re.compile(r'id="shown-url" class="mono" readonly value="([^"]+)"')


@pytest.fixture(scope="module")
def pages(db_url: str) -> Iterator[AppPortal]:
    """A portal of this module's own: its client keeps cookies (a browser's)."""
    with app_portal(db_url) as portal:
        yield portal


def sign_in(client: httpx.Client, email: str, password: str) -> str:
    """Sign in by the JSON API into the client's cookie jar; the page's CSRF token."""
    client.cookies.clear()
    r = client.post("/api/auth/login", json={"email": email, "password": password})
    assert r.status_code == 200
    page = client.get("/account")
    assert page.status_code == 200
    found = CSRF.search(page.text)
    assert found
    return found.group(1)


def test_admin_invites_and_the_invitee_signs_in_by_the_link(pages: AppPortal, db_url: str) -> None:
    tenant: SeededCompany = seed_company(db_url)
    c = pages.client
    csrf = sign_in(c, tenant.email, tenant.password)
    r = c.get("/users")
    assert r.status_code == 200 and tenant.email in r.text and 'href="/users"' in r.text
    email = f"page-{uuid.uuid4().hex[:8]}@example.test"
    r = c.post("/users/invite", data={"email": email, "role": "viewer"})
    assert r.status_code == 403  # no CSRF token
    r = c.post("/users/invite", data={"email": email, "role": "viewer", "csrf_token": csrf})
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    url = unescape(LINK.search(r.text).group(1))  # type: ignore[union-attr]
    assert "Shown once" in r.text
    listing = c.get("/users").text
    assert email in listing and url not in listing  # once
    # The invitee, signed out.
    c.cookies.clear()
    path = url.removeprefix("http://portal.test")
    form = c.get(path)
    assert form.status_code == 200 and email in form.text
    assert form.headers["referrer-policy"] == "no-referrer"
    invite_csrf = CSRF.search(form.text).group(1)  # type: ignore[union-attr]
    token = path.split("token=", 1)[1]
    r = c.post(
        "/invite",
        data={"token": token, "csrf_token": invite_csrf, "password": "p1-long-enough",
              "confirm_password": "p2-long-enough"},
    )  # fmt: skip
    assert r.status_code == 422 and "differ" in r.text
    r = c.post(
        "/invite",
        data={"token": token, "csrf_token": invite_csrf, "password": "p1-long-enough",
              "confirm_password": "p1-long-enough"},
        follow_redirects=False,
    )  # fmt: skip
    assert r.status_code == 303 and r.headers["location"] == "/cameras"
    me = c.get("/api/auth/me").json()
    assert (me["email"], me["role"]) == (email, "viewer")
    # A viewer: no users page, no nav link to it.
    assert c.get("/users").status_code == 403
    assert 'href="/users"' not in c.get("/account").text
    # The link is used.
    c.cookies.clear()
    assert c.get(path).status_code == 404


def test_last_admin_refusal_and_own_password_as_pages(pages: AppPortal, db_url: str) -> None:
    tenant = seed_company(db_url)
    c = pages.client
    csrf = sign_in(c, tenant.email, tenant.password)
    me = c.get("/api/auth/me").json()
    r = c.post(f"/users/{me['id']}/disable", data={"csrf_token": csrf})
    assert r.status_code == 409 and "last active admin" in r.text
    r = c.post(f"/users/{uuid.uuid4()}/disable", data={"csrf_token": csrf})
    assert r.status_code == 404
    r = c.post(
        "/account/password",
        data={"csrf_token": csrf, "current_password": "wrong", "new_password": "new-pass-123",
              "confirm_password": "new-pass-123"},
    )  # fmt: skip
    assert r.status_code == 403 and "current password is wrong" in r.text
    r = c.post(
        "/account/password",
        data={"csrf_token": csrf, "current_password": tenant.password,
              "new_password": "new-pass-123", "confirm_password": "new-pass-123"},
    )  # fmt: skip
    assert r.status_code == 200 and "Password changed" in r.text
    assert c.get("/api/auth/me").status_code == 200  # this session stays
    c.cookies.clear()
    r = c.post("/api/auth/login", json={"email": tenant.email, "password": "new-pass-123"})
    assert r.status_code == 200
    c.cookies.clear()
