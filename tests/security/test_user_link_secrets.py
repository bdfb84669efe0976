"""Invitation and reset links and passwords never leak: a portal process at DEBUG without SMTP
(the link is in the answer that makes it, and only there), the whole lifecycle by the API, the
pages and the CLI; then neither the portal's log nor any other answer nor the change trail holds
a link token, a chosen password or the SMTP password of a failed delivery."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import httpx
import pytest

from tests.support.portal import cli_json, new_sqlite_url, portal_process, seed_company, sql
from tests.support.procs import free_port
from tests.support.secrets import assert_no_secrets

pytestmark = pytest.mark.e2e  # real portal processes

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
SMTP_PASSWORD = "smtp-never-logged-1f2e3d"


def token_of(url: str) -> str:
    return url.split("token=", 1)[1]


def test_links_and_passwords_stay_out_of_logs_answers_and_trail(tmp_path: Path) -> None:
    db = new_sqlite_url(tmp_path)
    secrets: dict[str, str] = {}
    answers: dict[str, str] = {}
    with portal_process(db, log_dir=tmp_path, log_level="debug") as portal:
        base = portal.url
        co = seed_company(db)
        admin = portal.login(co.email, co.password)
        email = f"leak-{uuid.uuid4().hex[:6]}@example.test"
        r = httpx.post(f"{base}/api/users/invite", headers=admin, json={"email": email})
        assert r.status_code == 201
        invite = token_of(r.json()["link"]["url"])
        secrets["invite token"] = invite
        user_id = r.json()["user"]["id"]
        # Accepted through the page form (signed out, double-submit CSRF).
        with httpx.Client(base_url=base, timeout=20, follow_redirects=True) as browser:
            form = browser.get(f"/invite?token={invite}")
            assert form.status_code == 200
            csrf = CSRF.search(form.text).group(1)  # type: ignore[union-attr]
            secrets["first password"] = first = "first-password-8a7b"
            r = browser.post(
                "/invite",
                data={"token": invite, "csrf_token": csrf, "password": first,
                      "confirm_password": first},
            )  # fmt: skip
            assert r.status_code == 200 and r.url.path == "/cameras"  # followed the redirect
            answers["cameras page"] = r.text
        # Reset by the API, used by the API; the own-password change.
        r = httpx.post(f"{base}/api/users/{user_id}/reset-password", headers=admin)
        reset = token_of(r.json()["link"]["url"])
        secrets["reset token"] = reset
        secrets["reset password"] = second = "second-password-6c5d"
        r = httpx.post(f"{base}/api/invites/accept", json={"token": reset, "password": second})
        assert r.status_code == 200
        user = {"Authorization": f"Bearer {r.json()['access_token']}"}
        secrets["own password"] = third = "third-password-4e3f"
        r = httpx.post(
            f"{base}/api/account/password",
            headers=user,
            json={"current_password": second, "new_password": third},
        )
        assert r.json() == {"ok": True}
        answers["password change"] = r.text
        # Refused attempts carry secrets too: a used link, a wrong current password.
        r = httpx.post(f"{base}/api/invites/accept", json={"token": invite, "password": first})
        assert r.status_code == 404
        answers["used link"] = r.text
        r = httpx.post(
            f"{base}/api/account/password",
            headers=user,
            json={"current_password": "wrong-guess-9z8y", "new_password": third},
        )
        assert r.status_code == 403
        answers["wrong current"] = r.text
        secrets["wrong guess"] = "wrong-guess-9z8y"
        for path in ("/api/users", f"/api/users/{user_id}"):
            answers[path] = httpx.get(base + path, headers=admin).text
        answers["users page"] = httpx.get(f"{base}/users", headers=admin).text
        # The CLI's invite prints its link once (its answer); not in the trail either.
        made = cli_json(db, "user", "invite", "--company", co.company_id, "--email",
                        f"cli-{email}", "--portal-url", base)  # fmt: skip
        secrets["CLI invite token"] = token_of(made["link"]["url"])
        log = Path(portal.log_path).read_text(errors="replace")
    # A delivery that fails names the server, never the SMTP password.
    env = {"PLATEBRIDGE_SMTP_HOST": "127.0.0.1", "PLATEBRIDGE_SMTP_PORT": str(free_port()),
           "PLATEBRIDGE_SMTP_SECURITY": "none", "PLATEBRIDGE_SMTP_USERNAME": "mailer",
           "PLATEBRIDGE_SMTP_PASSWORD": SMTP_PASSWORD}  # fmt: skip
    mail_dir = tmp_path / "mail"
    mail_dir.mkdir()
    with portal_process(db, env, log_dir=mail_dir, log_level="debug") as failing:
        r = httpx.post(
            f"{failing.url}/api/users/invite",
            headers=failing.login(co.email, co.password),
            json={"email": f"mailfail-{email}"},
        )
        assert (r.status_code, r.json()["error"]) == (502, "mail_failed")
        answers["failed delivery"] = r.text
        mail_log = Path(failing.log_path).read_text(errors="replace")
    secrets["SMTP password"] = SMTP_PASSWORD
    trail = "\n".join(str(row) for row in sql(db, "SELECT detail FROM admin_changes"))
    assert "user.invite" in "\n".join(str(r) for r in sql(db, "SELECT action FROM admin_changes"))
    assert_no_secrets({"portal log": log, "failing portal log": mail_log}, secrets)
    assert_no_secrets({"trail": trail}, secrets, kind="trail")
    assert_no_secrets(answers, secrets, kind="answer")
