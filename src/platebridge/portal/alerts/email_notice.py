"""One alert notice as e-mail: subject, plain text and HTML rendered from the frozen payload
(schema ``platebridge.alert/1``), sent with a Message-ID derived from the delivery id so every
retry of one notice is the same message to the recipient's mail client."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from typing import Any

from platebridge.portal.mail import message_domain, send_mail
from platebridge.portal.settings import PortalSettings


@dataclass(frozen=True, slots=True)
class RenderedNotice:
    subject: str
    text: str
    html: str


def _one_line(value: object, limit: int = 200) -> str:
    """A name as one bounded line (names come from users and PODs)."""
    text = " ".join(str(value).split())
    return text[:limit]


def _name(payload: dict[str, Any], key: str) -> str | None:
    part = payload.get(key)
    if isinstance(part, dict) and part.get("name"):
        return _one_line(part["name"])
    return None


def _link(payload: dict[str, Any]) -> str | None:
    url = payload.get("url")
    if isinstance(url, str) and url.startswith(("https://", "http://")) and "\n" not in url:
        return url
    return None


def _facts(payload: dict[str, Any]) -> list[tuple[str, str]]:
    facts: list[tuple[str, str]] = []
    for label, key in (
        ("Company", "company"),
        ("Community", "community"),
        ("Site", "site"),
        ("POD", "pod"),
        ("Camera", "camera"),
    ):
        name = _name(payload, key)
        if name:
            facts.append((label, name))
    incident = payload.get("incident")
    if isinstance(incident, dict):
        for label, key in (
            ("What", "detail"),
            ("Times it began", "count"),
            ("First seen", "first_seen"),
            ("Alerted", "opened_at"),
            ("Resolved", "resolved_at"),
        ):
            value = incident.get(key)
            if value not in (None, ""):
                facts.append((label, _one_line(value, 500)))
    elif payload.get("event") == "test":
        facts.append(("What", "A test notice sent from the alert settings; nothing is wrong."))
    return facts


def render(payload: dict[str, Any]) -> RenderedNotice:
    """Subject, plain text and HTML (every value escaped) of one notice (pure)."""
    title = _one_line(payload.get("title") or "PlateBridge alert")
    subject = f"[PlateBridge] {title}"
    facts = _facts(payload)
    link = _link(payload)
    width = max((len(label) for label, _ in facts), default=0)
    lines = [title, ""] + [f"{label + ':':<{width + 1}} {value}" for label, value in facts]
    if link:
        lines += ["", f"Open the camera: {link}"]
    lines += ["", f"Delivery {payload.get('delivery_id', '')}"]
    rows = "".join(
        f'<tr><th align="left">{html.escape(label)}</th><td>{html.escape(value)}</td></tr>'
        for label, value in facts
    )
    link_html = (
        f'<p><a href="{html.escape(link, quote=True)}">Open the camera</a></p>' if link else ""
    )
    body = (
        "<!doctype html><html><body>"
        f"<h2>{html.escape(title)}</h2>"
        f"<table>{rows}</table>{link_html}"
        f'<p style="color:#666">Delivery {html.escape(str(payload.get("delivery_id", "")))}</p>'
        "</body></html>"
    )
    return RenderedNotice(subject=subject, text="\n".join(lines) + "\n", html=body)


def message_id(delivery_id: str, settings: PortalSettings) -> str:
    """``<delivery-id@domain>``: the same for every attempt of one notice."""
    return f"<{delivery_id}@{message_domain(settings) or 'platebridge.invalid'}>"


async def send_email_notice(
    settings: PortalSettings, to: str, payload_json: str, delivery_id: str
) -> None:
    """Render and send one notice to ``to`` (``mail.MailError`` when not handed over)."""
    notice = render(json.loads(payload_json))
    await send_mail(
        settings,
        to,
        notice.subject,
        notice.text,
        notice.html,
        message_id=message_id(delivery_id, settings),
    )
