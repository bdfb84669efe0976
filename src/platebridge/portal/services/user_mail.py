"""Handing an invitation or reset link to its user: by e-mail through ``portal/mail.py`` when
SMTP is configured, else back to the admin who made it, to be shown once on screen (or printed
once by the CLI). The link is in the message or in that one answer, never in a log or a trail.
"""

from __future__ import annotations

from datetime import datetime
from html import escape

from typing_extensions import TypedDict

from platebridge.portal.mail import mail_configured, send_mail
from platebridge.portal.services.users import IssuedLink, link_url
from platebridge.portal.settings import PortalSettings


class Delivery(TypedDict):
    """What the admin is told: ``sent_to`` when mailed, ``url`` (once) when not."""

    purpose: str
    expires_at: str
    sent_to: str | None
    url: str | None


def link_message(purpose: str, url: str, expires_at: datetime) -> tuple[str, str, str]:
    """Subject, plain text and HTML of the message carrying ``url``."""
    until = expires_at.strftime("%Y-%m-%d %H:%M UTC")
    if purpose == "invite":
        subject = "You are invited to PlateBridge"
        lead = "You have been invited to PlateBridge. Choose your password to sign in:"
    else:
        subject = "Reset your PlateBridge password"
        lead = "A new password was requested for your PlateBridge account. Choose it here:"
    tail = f"The link works once, until {until}. If you did not expect it, ignore this e-mail."
    text = f"{lead}\n\n{url}\n\n{tail}\n"
    html = (
        f'<p>{escape(lead)}</p>\n<p><a href="{escape(url, quote=True)}">{escape(url)}</a></p>\n'
        f"<p>{escape(tail)}</p>\n"
    )
    return subject, text, html


def base_url_for(settings: PortalSettings, request_base: str) -> str:
    """``public_url`` when set, else the address the admin's request came to."""
    return (settings.public_url or request_base).rstrip("/")


async def deliver(settings: PortalSettings, link: IssuedLink, base_url: str) -> Delivery:
    """Mail the link (``MailError`` when that fails), or return it to be shown once."""
    url = link_url(base_url, link.token)
    expires = link.expires_at.isoformat()
    if not mail_configured(settings):
        return {"purpose": link.purpose, "expires_at": expires, "sent_to": None, "url": url}
    subject, text, html = link_message(link.purpose, url, link.expires_at)
    await send_mail(settings, link.user.email, subject, text, html)
    return {"purpose": link.purpose, "expires_at": expires, "sent_to": link.user.email, "url": None}
