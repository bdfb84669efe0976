"""``portal/mail.py``: the message as built (pure), and real SMTP conversations with aiosmtpd on
127.0.0.1 — plain with a login, STARTTLS and implicit TLS with a self-signed certificate (e2e:
``openssl`` makes it), and each failure as one clear ``MailError`` without the password."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from platebridge.portal.mail import MailError, build_message, send_mail, sender
from platebridge.portal.settings import PortalSettings
from tests.support.inprocess import settings_from_env
from tests.support.procs import free_port
from tests.support.smtp import SmtpServer, self_signed_cert

SMTP_PASSWORD = "smtp-password-5a4b3c"


def settings_for(env: dict[str, str]) -> PortalSettings:
    return settings_from_env("sqlite:///unused.db", env)


def test_message_has_text_and_html_and_refuses_header_injection() -> None:
    settings = PortalSettings(smtp_host="mail.example.test", smtp_from="")
    assert sender(settings) == "PlateBridge <noreply@mail.example.test>"
    message = build_message(settings, "a@example.test", "Hello", "plain body", "<p>html</p>")
    assert message["To"] == "a@example.test" and message["Subject"] == "Hello"
    assert message["Message-ID"].endswith("@mail.example.test>")
    plain = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert plain is not None and plain.get_content().strip() == "plain body"
    assert html is not None and html.get_content().strip() == "<p>html</p>"
    with pytest.raises(MailError):
        build_message(settings, "a@example.test", "Hi\r\nBcc: evil@example.test", "x", None)


def test_not_configured_is_a_clear_error() -> None:
    with pytest.raises(MailError, match="no SMTP server is configured"):
        asyncio.run(send_mail(PortalSettings(), "a@example.test", "s", "t"))


def test_plain_conversation_with_a_login() -> None:
    with SmtpServer(login=("mailer", SMTP_PASSWORD)) as smtp:
        settings = settings_for(smtp.portal_env())
        asyncio.run(send_mail(settings, "to@example.test", "Subject", "text", "<b>html</b>"))
        received = smtp.wait_for(1)[0]
        assert received.rcpt_tos == ["to@example.test"] and not received.tls
        assert received.part("plain").strip() == "text"
        assert received.part("html").strip() == "<b>html</b>"
        wrong = settings_for({**smtp.portal_env(), "PLATEBRIDGE_SMTP_PASSWORD": "wrong-one"})
        with pytest.raises(MailError, match="refused the login") as caught:
            asyncio.run(send_mail(wrong, "to@example.test", "s", "t"))
        assert "wrong-one" not in str(caught.value)


def test_starttls_required_but_not_offered() -> None:
    with SmtpServer() as smtp:
        settings = settings_for({**smtp.portal_env(), "PLATEBRIDGE_SMTP_SECURITY": "starttls"})
        with pytest.raises(MailError, match="does not offer STARTTLS"):
            asyncio.run(send_mail(settings, "to@example.test", "s", "t"))
        assert smtp.messages == []


def test_unreachable_server() -> None:
    env = {"PLATEBRIDGE_SMTP_HOST": "127.0.0.1", "PLATEBRIDGE_SMTP_PORT": str(free_port()),
           "PLATEBRIDGE_SMTP_SECURITY": "none"}  # fmt: skip
    with pytest.raises(MailError, match="unreachable"):
        asyncio.run(send_mail(settings_for(env), "to@example.test", "s", "t"))


@pytest.mark.e2e  # openssl makes the certificate
@pytest.mark.parametrize("implicit", [False, True], ids=["starttls", "ssl"])
def test_tls_verifies_the_certificate(tmp_path: Path, implicit: bool) -> None:
    cert = self_signed_cert(tmp_path)
    with SmtpServer(tls=cert, require_starttls=True, implicit_tls=implicit) as smtp:
        env = smtp.portal_env()
        asyncio.run(send_mail(settings_for(env), "to@example.test", "s", "over tls"))
        assert smtp.wait_for(1)[0].tls
        untrusted = {k: v for k, v in env.items() if k != "PLATEBRIDGE_SMTP_CA_FILE"}
        with pytest.raises(MailError, match="TLS with SMTP server"):
            asyncio.run(send_mail(settings_for(untrusted), "to@example.test", "s", "t"))
        assert len(smtp.messages) == 1
