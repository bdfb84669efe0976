"""``platebridge-portal user …`` (the operator's CLI), SQLite and PostgreSQL: a company's first
admin by invitation, list/show/update/disable/enable/delete/reset-password with ``--json``, the
last-admin rule, one-line errors, every change in the trail with the actor ``operator``."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.support.inprocess import app_portal
from tests.support.portal import cli, cli_json, sql

pytestmark = pytest.mark.e2e  # runs the platebridge-portal program


def test_operator_creates_a_company_and_its_first_admin_by_invitation(db_url: str) -> None:
    company = cli_json(db_url, "company", "create", "--name", f"CLI Co {uuid.uuid4().hex[:6]}")
    cid = company["company_id"]
    email = f"first-{uuid.uuid4().hex[:6]}@example.test"
    # The link needs the portal's address.
    r = cli(db_url, "user", "invite", "--company", cid, "--email", email, check=False)
    assert r.returncode == 1 and "--portal-url" in r.stderr
    made = cli_json(
        db_url, "user", "invite", "--company", cid, "--email", email, "--role", "admin",
        "--portal-url", "https://portal.example.test",
    )  # fmt: skip
    assert made["user"]["status"] == "invited" and made["user"]["role"] == "admin"
    url = made["link"]["url"]
    assert url.startswith("https://portal.example.test/invite?token=")
    token = url.split("token=", 1)[1]
    with app_portal(db_url) as portal:
        r = portal.client.post(
            "/api/invites/accept", json={"token": token, "password": "first-admin-pw"}
        )
        assert r.status_code == 200
        auth = {"Authorization": f"Bearer {r.json()['access_token']}"}
        assert portal.client.get("/api/users", headers=auth).status_code == 200
    listed = cli_json(db_url, "user", "list", "--company", cid)["users"]
    assert [(u["email"], u["status"]) for u in listed] == [(email, "active")]
    # The last active admin stays.
    for action in ("disable", "delete"):
        r = cli(db_url, "user", action, "--user", email, check=False)
        assert r.returncode == 1 and "last active admin" in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    r = cli(db_url, "user", "update", "--user", email, "--role", "viewer", check=False)
    assert r.returncode == 1 and "last active admin" in r.stderr
    # A second admin by `user create`; then every action on the first.
    second = f"second-{uuid.uuid4().hex[:6]}@example.test"
    cli_json(db_url, "user", "create", "--company", cid, "--email", second,
             "--password", "second-admin-pw", "--role", "admin")  # fmt: skip
    shown = cli_json(db_url, "user", "update", "--user", email, "--role", "viewer")
    assert shown["role"] == "viewer"
    assert cli_json(db_url, "user", "disable", "--user", email)["status"] == "disabled"
    r = cli(db_url, "user", "reset-password", "--user", email,
            "--portal-url", "https://p.test", check=False)  # fmt: skip
    assert r.returncode == 1 and "enable the user" in r.stderr
    assert cli_json(db_url, "user", "enable", "--user", email)["status"] == "active"
    reset = cli_json(db_url, "user", "reset-password", "--user", email, "--company", cid,
                     "--portal-url", "https://p.test")  # fmt: skip
    assert reset["link"]["purpose"] == "reset" and reset["link"]["url"].startswith(
        "https://p.test/"
    )
    shown = cli_json(db_url, "user", "update", "--user", email, "--password", "operator-set-pw")
    assert shown["password_changed_at"] is not None
    assert cli_json(db_url, "user", "show", "--user", shown["id"])["email"] == email
    deleted = cli_json(db_url, "user", "delete", "--user", email)
    assert deleted["deleted"] is True
    r = cli(db_url, "user", "show", "--user", email, check=False)
    assert r.returncode == 1 and r.stderr.strip() == "platebridge-portal: error: user not found"
    # The trail: actor operator for the CLI, the invitee for the acceptance; no secret.
    rows = sql(
        db_url,
        "SELECT action, actor, detail FROM admin_changes WHERE object_type = 'user' ORDER BY at",
    )
    mine = [(a, actor) for a, actor, d in rows if email in d or second in d]
    assert ("user.invite", "operator") in mine
    assert ("user.accept_invite", email) in mine
    for action in ("user.create", "user.role", "user.disable", "user.enable",
                   "user.reset_password", "user.password", "user.delete"):  # fmt: skip
        assert (action, "operator") in mine, action
    trail = json.dumps([list(r) for r in rows])
    for secret in (token, reset["link"]["url"].split("token=")[1], "operator-set-pw"):
        assert secret not in trail
