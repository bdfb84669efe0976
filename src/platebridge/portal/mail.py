"""Outgoing e-mail through the SMTP settings (``PLATEBRIDGE_SMTP_*``), generic for every sender
(user invitations and password resets; alerts later).

``send_mail(settings, to, subject, text, html)`` sends one message with a plain-text and an HTML
alternative. The standard library's ``smtplib`` runs in a worker thread (the event loop stays
free); ``smtp_security`` is ``starttls`` (required, not opportunistic), ``ssl`` or ``none``, and
with TLS the server's certificate and host name are always verified (against ``smtp_ca_file``
when set). A failure is a :class:`MailError` (502 ``mail_failed``) whose message names the
server and the reason, never the password or the message body (which may carry a link).
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formataddr, make_msgid, parseaddr

from platebridge.portal.errors import ApiError
from platebridge.portal.settings import PortalSettings


class MailError(ApiError):
    """The message could not be handed to the SMTP server."""

    def __init__(self, message: str) -> None:
        super().__init__(502, "mail_failed", message)


def mail_configured(settings: PortalSettings) -> bool:
    """Whether the portal sends e-mail (``smtp_host`` set)."""
    return bool(settings.smtp_host)


def sender(settings: PortalSettings) -> str:
    """The From address: ``smtp_from``, else ``PlateBridge <noreply@host>``."""
    if settings.smtp_from:
        return settings.smtp_from
    host = settings.smtp_host.strip("[]") or "localhost"
    return formataddr(("PlateBridge", f"noreply@{host}"))


def message_domain(settings: PortalSettings) -> str | None:
    """The domain of the From address (the right-hand side of Message-IDs)."""
    return parseaddr(sender(settings))[1].rpartition("@")[2] or None


def build_message(
    settings: PortalSettings,
    to: str,
    subject: str,
    text: str,
    html: str | None,
    message_id: str | None = None,
) -> EmailMessage:
    """The message as sent (pure: unit-tested without a server). ``message_id``: a stable
    Message-ID (``<id@domain>``, e.g. an alert's retries); default a random one."""
    if any(ch in to + subject + (message_id or "") for ch in "\r\n"):
        raise MailError("an e-mail address or subject contains a line break")
    message = EmailMessage()
    message["From"] = sender(settings)
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = message_id or make_msgid(domain=message_domain(settings))
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message


def _tls_context(settings: PortalSettings) -> ssl.SSLContext:
    if settings.smtp_ca_file:
        return ssl.create_default_context(cafile=settings.smtp_ca_file)
    return ssl.create_default_context()


def _send_blocking(settings: PortalSettings, message: EmailMessage) -> None:
    host, port, timeout = settings.smtp_host, settings.smtp_port, settings.smtp_timeout
    client: smtplib.SMTP
    if settings.smtp_security == "ssl":
        client = smtplib.SMTP_SSL(host, port, timeout=timeout, context=_tls_context(settings))
    else:
        client = smtplib.SMTP(host, port, timeout=timeout)
    with client:
        client.ehlo()
        if settings.smtp_security == "starttls":
            if not client.has_extn("starttls"):
                raise MailError(f"SMTP server {host}:{port} does not offer STARTTLS")
            client.starttls(context=_tls_context(settings))
            client.ehlo()
        if settings.smtp_username:
            password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
            client.login(settings.smtp_username, password)
        client.send_message(message)


async def send_mail(
    settings: PortalSettings,
    to: str,
    subject: str,
    text: str,
    html: str | None = None,
    message_id: str | None = None,
) -> None:
    """Send one message to ``to``; :class:`MailError` when it could not be handed over."""
    if not mail_configured(settings):
        raise MailError("no SMTP server is configured (PLATEBRIDGE_SMTP_HOST)")
    message = build_message(settings, to, subject, text, html, message_id)
    where = f"{settings.smtp_host}:{settings.smtp_port}"
    try:
        await asyncio.to_thread(_send_blocking, settings, message)
    except MailError:
        raise
    except smtplib.SMTPAuthenticationError:
        raise MailError(f"SMTP server {where} refused the login") from None
    except smtplib.SMTPRecipientsRefused:
        raise MailError(f"SMTP server {where} refused the recipient address") from None
    except smtplib.SMTPException as exc:
        raise MailError(f"SMTP server {where} refused the message ({type(exc).__name__})") from None
    except ssl.SSLError as exc:
        raise MailError(f"TLS with SMTP server {where} failed ({exc.reason})") from None
    except TimeoutError:
        raise MailError(f"SMTP server {where} did not answer in time") from None
    except OSError as exc:
        raise MailError(f"SMTP server {where} is unreachable ({exc.strerror or exc})") from None
