"""Invite → e-mail → link → password → signed in, in a real Chromium against a real portal
process whose mail goes through a real SMTP conversation (aiosmtpd on 127.0.0.1) with STARTTLS
and a self-signed certificate (trusted through ``PLATEBRIDGE_SMTP_CA_FILE``) and an SMTP login.
The portal logs at DEBUG; neither the link's token, the chosen password nor the SMTP password
appears in its log."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page

from tests.support.portal import (
    PortalProc,
    SeededCompany,
    new_sqlite_url,
    portal_process,
    seed_company,
)
from tests.support.secrets import assert_no_secrets
from tests.support.smtp import SmtpServer, invite_link, self_signed_cert
from tests.web.conftest import sign_in

pytestmark = pytest.mark.e2e

SMTP_LOGIN = ("portal-mailer", "smtp-pass-9c8b7a6d5e")
CHOSEN = "chosen-in-browser-4f3e2d"


@dataclass
class MailWorld:
    portal: PortalProc
    smtp: SmtpServer
    tenant: SeededCompany


@pytest.fixture(scope="module")
def mail_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailWorld]:
    tmp = tmp_path_factory.mktemp("invite")
    cert = self_signed_cert(tmp)
    db = new_sqlite_url(tmp)
    smtp = SmtpServer(tls=cert, require_starttls=True, login=SMTP_LOGIN)
    with smtp, portal_process(db, smtp.portal_env(), log_dir=tmp, log_level="debug") as portal:
        yield MailWorld(portal, smtp, seed_company(db))


def test_invited_user_sets_a_password_in_the_browser_and_is_signed_in(
    mail_world: MailWorld, page: Page
) -> None:
    w = mail_world
    base = w.portal.url
    sign_in(page, base, w.tenant.email, w.tenant.password, "/users")
    email = f"browser-{uuid.uuid4().hex[:8]}@example.test"
    page.fill("#invite-email", email)
    page.select_option("#invite-role", "viewer")
    page.click("#invite-title ~ form button[type=submit]")
    page.wait_for_selector("#shown-link")
    assert f"sent to {email}" in page.inner_text("#shown-link")
    assert page.locator("#shown-url").count() == 0  # mailed: not shown
    status = page.locator(f'tr[data-user="{email}"] [data-status]')
    assert status.get_attribute("data-status") == "invited"
    message = w.smtp.wait_for(1)[0]
    assert message.tls, "the mail was not sent over STARTTLS"
    assert message.rcpt_tos == [email]
    link = invite_link(message)
    assert link.startswith(base + "/invite?token=")
    token = link.split("token=", 1)[1]
    # The invitee, in a fresh browser state.
    page.context.clear_cookies()
    page.goto(link)
    assert page.inner_text("#invite-email") == email
    page.fill("#password", CHOSEN)
    page.fill("#confirm_password", CHOSEN)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/cameras")
    assert page.inner_text(".who") == email
    # Signed in for real: the session cookie works for the API, and the link is spent.
    cookie = next(c for c in page.context.cookies() if c["name"] == "pb_session")
    me = httpx.get(f"{base}/api/auth/me", cookies={"pb_session": cookie["value"]}).json()
    assert (me["email"], me["role"]) == (email, "viewer")
    page.goto(link)
    assert "invalid, used or expired" in page.content()
    log = Path(w.portal.log_path).read_text(errors="replace")
    assert "/invite" in log  # the request lines are logged (the token masked)
    assert_no_secrets(
        {"portal log": log},
        {"invite token": token, "chosen password": CHOSEN, "SMTP password": SMTP_LOGIN[1]},
    )
