"""Login, cookie sessions, logout, and secure-by-default routing."""

from __future__ import annotations

import httpx
import pytest

from platebridge.portal.app import create_app
from platebridge.portal.settings import PortalSettings
from tests.portal.conftest import Portal
from tests.support.portal import SeededCompany

pytestmark = pytest.mark.e2e  # a real portal process (tests/conftest.py guards it)

#: ``/api/invites/accept``: a single-use link's token is the credential (docs/portal.md, Users).
PUBLIC_PATHS = {
    "/health",
    "/api/auth/login",
    "/api/pod/heartbeat",
    "/api/pod/enroll",
    "/api/invites/accept",
    # a share link's secret is its credential (tests/portal/test_shares.py: 404/410 otherwise)
    "/s/{secret}/clip.mp4",
    "/s/{secret}/media",
}


def test_login_bearer_cookie_logout(portal: Portal, tenant: SeededCompany) -> None:
    r = httpx.post(
        f"{portal.url}/api/auth/login", json={"email": tenant.email, "password": tenant.password}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] > 0
    token = body["access_token"]
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"pb_session={token}")
    assert "HttpOnly" in cookie and "samesite=lax" in cookie.lower()

    bearer = {"Authorization": f"Bearer {token}"}
    me = httpx.get(f"{portal.url}/api/auth/me", headers=bearer).json()
    assert (me["email"], me["company_id"]) == (tenant.email, tenant.company_id)
    with httpx.Client(base_url=portal.url, cookies={"pb_session": token}) as browser:
        assert browser.get("/api/cameras").status_code == 200
        assert browser.post("/api/auth/logout").status_code == 200
        assert browser.get("/api/cameras").status_code == 401
    assert httpx.get(f"{portal.url}/api/cameras", headers=bearer).status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {"email": "nobody@example.test", "password": "whatever-password"},
        {"email": "WRONG", "password": "x"},
    ],
)
def test_bad_credentials_401(portal: Portal, tenant: SeededCompany, body: dict[str, str]) -> None:
    r = httpx.post(f"{portal.url}/api/auth/login", json=body)
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_credentials"
    assert body["password"] not in r.text


def test_wrong_password_and_case_insensitive_email(portal: Portal, tenant: SeededCompany) -> None:
    r = httpx.post(
        f"{portal.url}/api/auth/login", json={"email": tenant.email, "password": "wrong-pass"}
    )
    assert r.status_code == 401
    r = httpx.post(
        f"{portal.url}/api/auth/login",
        json={"email": tenant.email.upper(), "password": tenant.password},
    )
    assert r.status_code == 200


def test_login_validation_422(portal: Portal) -> None:
    r = httpx.post(f"{portal.url}/api/auth/login", json={"email": "a@b.c"})
    assert r.status_code == 422
    assert r.json() == {
        "error": "validation_error",
        "detail": [{"field": "password", "message": "Field required"}],
    }


def test_every_non_public_route_requires_a_user(portal: Portal) -> None:
    """Walk the real app's routes: all but the public ones answer 401 without a session."""
    app = create_app(PortalSettings(database_url=portal.db_url))
    paths = app.openapi()["paths"]
    assert set(paths) > PUBLIC_PATHS
    assert len(paths) >= 8
    for path, methods in paths.items():
        if path in PUBLIC_PATHS:
            continue
        url = f"{portal.url}{path.replace('{pod_id}', 'main-gate-pod')}"
        for method in methods:
            for headers in ({}, {"Authorization": "Bearer forged-token"}):
                r = httpx.request(method.upper(), url, headers=headers)
                assert r.status_code == 401, (method, path, r.text)
                assert r.json()["error"] == "unauthorized"
    r = httpx.get(f"{portal.url}/health")
    assert r.status_code == 200


def test_health_and_unknown_routes_are_json(portal: Portal) -> None:
    assert httpx.get(f"{portal.url}/health").json() == {"status": "ok", "database": "ok"}
    r = httpx.get(f"{portal.url}/nope")
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    r = httpx.get(f"{portal.url}/api/pod/heartbeat")
    assert r.status_code == 405 and r.json()["error"] == "method_not_allowed"
