"""A company's alert settings for its admins: the rules, the endpoints (webhook, e-mail), "send
test"; and every user's own site subscriptions (docs/alerts.md, "API and pages").

Rows are looked up inside the caller's company only (``scoping`` conventions: another company's
endpoint, or a malformed id, is 404 exactly as one that does not exist). Every change writes its
``changes.record_change`` row in the same transaction. A webhook's signing secret is made here,
returned to the caller once (creation, rotation) and never put in a dict, a change row or a log
line.
"""

from __future__ import annotations

import ipaddress
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from platebridge.portal.alerts.enqueue import enqueue_test, webhook_target
from platebridge.portal.alerts.models import (
    AlertDelivery,
    AlertEndpoint,
    AlertSettings,
    AlertSubscription,
    ChannelKind,
)
from platebridge.portal.alerts.rules import AlertRules, parse_rules
from platebridge.portal.errors import ApiError, field_errors, not_found
from platebridge.portal.models import Community, Site, User, utcnow
from platebridge.portal.scoping import get_site_for_user
from platebridge.portal.services.changes import record_change
from platebridge.portal.services.users import check_email

MAX_URL = 2000
MAX_RECIPIENTS = 20
MAX_ENDPOINTS = 50


@dataclass(slots=True)
class WithSecret:
    """An endpoint and its new signing secret (to be shown once)."""

    endpoint: AlertEndpoint
    secret: str


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


# --- rules -----------------------------------------------------------------------------------


async def get_rules(session: AsyncSession, company_id: uuid.UUID) -> AlertRules:
    row = await session.get(AlertSettings, company_id)
    return parse_rules(None if row is None else row.rules)


def check_rules(document: Any) -> AlertRules:
    """``document`` as rules, or 422 ``validation_error`` naming each bad field (the pages'
    form; the JSON API validates its body as ``AlertRules`` itself)."""
    try:
        return AlertRules.model_validate(document)
    except ValidationError as exc:
        text = "; ".join(f"{e['field']}: {e['message']}" for e in field_errors(exc.errors()))
        raise ApiError(422, "validation_error", text) from None


async def set_rules(
    session: AsyncSession, company_id: uuid.UUID, rules: AlertRules, actor: User
) -> AlertRules:
    row = await session.get(AlertSettings, company_id)
    text = rules.model_dump_json()
    if row is None:
        session.add(AlertSettings(company_id=company_id, rules=text, updated_at=utcnow()))
    else:
        row.rules, row.updated_at = text, utcnow()
    record_change(
        session,
        actor=actor,
        company_id=company_id,
        action="alerts.rules",
        object_type="alert_rules",
        object_id=str(company_id),
        detail=rules.model_dump(),
    )
    await session.flush()
    return rules


# --- endpoints -------------------------------------------------------------------------------


def check_url(url: str) -> str:
    """A webhook URL: http or https, a host, no credentials, no fragment; else 422.

    Where it may point (no loopback, link-local, metadata unless the operator allows it) is the
    delivery's SSRF guard, checked when each notice is sent: a name may resolve elsewhere later.
    """
    url = url.strip()
    if not url or len(url) > MAX_URL or not url.isprintable() or " " in url:
        raise ApiError(422, "invalid_url", f"the URL must be 1-{MAX_URL} printable characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ApiError(422, "invalid_url", "not a valid URL") from None
    if parts.scheme not in ("http", "https"):
        raise ApiError(422, "invalid_url", "the URL must start with http:// or https://")
    if not parts.hostname:
        raise ApiError(422, "invalid_url", "the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise ApiError(
            422, "invalid_url", "no user or password in the URL (the body is signed instead)"
        )
    if parts.fragment:
        raise ApiError(422, "invalid_url", "the URL must not have a #fragment")
    if port == 0:
        raise ApiError(422, "invalid_url", "port 0 is not a port")
    host = parts.hostname
    if ":" in host:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ApiError(422, "invalid_url", "not a valid IPv6 address") from None
    return url


def check_recipients(addresses: list[str]) -> str:
    """E-mail addresses (1-20, each valid, no duplicates) as the stored comma-separated text."""
    clean: list[str] = []
    for address in addresses:
        email = check_email(address)
        if "," in email:
            raise ApiError(422, "invalid_email", "not a valid e-mail address")
        if email not in clean:
            clean.append(email)
    if not clean or len(clean) > MAX_RECIPIENTS:
        raise ApiError(422, "invalid_recipients", f"give 1-{MAX_RECIPIENTS} e-mail addresses")
    return ",".join(clean)


def check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 200 or not name.isprintable():
        raise ApiError(422, "invalid_name", "the name must be 1-200 printable characters")
    return name


def endpoint_dict(endpoint: AlertEndpoint) -> dict[str, Any]:
    """What the API and pages show of an endpoint: never its secret."""
    return {
        "id": str(endpoint.id),
        "kind": endpoint.kind,
        "name": endpoint.name,
        "url": endpoint.url if endpoint.kind == "webhook" else None,
        "target": webhook_target(endpoint.url) if endpoint.kind == "webhook" else None,
        "recipients": [a for a in endpoint.recipients.split(",") if a]
        if endpoint.kind == "email"
        else None,
        "enabled": endpoint.enabled,
        "created_at": _iso(endpoint.created_at),
    }


async def list_endpoints(session: AsyncSession, company_id: uuid.UUID) -> list[AlertEndpoint]:
    stmt = (
        select(AlertEndpoint)
        .where(AlertEndpoint.company_id == company_id)
        .order_by(AlertEndpoint.created_at, AlertEndpoint.id)
    )
    return list((await session.scalars(stmt)).all())


async def get_endpoint(session: AsyncSession, user: User, endpoint_id: str) -> AlertEndpoint:
    """The user's company's endpoint, or 404 (also another company's and malformed ids)."""
    try:
        wanted = uuid.UUID(endpoint_id)
    except ValueError:
        raise not_found("alert endpoint") from None
    stmt = select(AlertEndpoint).where(
        AlertEndpoint.company_id == user.company_id, AlertEndpoint.id == wanted
    )
    found = (await session.execute(stmt)).scalar_one_or_none()
    if found is None:
        raise not_found("alert endpoint")
    return found


def _record(
    session: AsyncSession, actor: User, endpoint: AlertEndpoint, action: str, **detail: Any
) -> None:
    record_change(
        session,
        actor=actor,
        company_id=endpoint.company_id,
        action=f"alerts.endpoint.{action}",
        object_type="alert_endpoint",
        object_id=str(endpoint.id),
        detail={"name": endpoint.name, "kind": endpoint.kind, **detail},
    )


def _public_detail(endpoint: AlertEndpoint) -> dict[str, Any]:
    """An endpoint's settings for the trail: a webhook's scheme://host only (paths and queries
    often carry a receiver's token), e-mail addresses, enabled."""
    if endpoint.kind == "webhook":
        return {"target": webhook_target(endpoint.url), "enabled": endpoint.enabled}
    return {"recipients": endpoint.recipients, "enabled": endpoint.enabled}


async def create_endpoint(
    session: AsyncSession,
    actor: User,
    kind: ChannelKind,
    name: str,
    *,
    url: str | None = None,
    recipients: list[str] | None = None,
    enabled: bool = True,
) -> WithSecret:
    """A new endpoint; a webhook's new secret is in the answer (and nowhere else afterwards)."""
    existing = await list_endpoints(session, actor.company_id)
    if len(existing) >= MAX_ENDPOINTS:
        raise ApiError(409, "too_many_endpoints", f"at most {MAX_ENDPOINTS} endpoints")
    endpoint = AlertEndpoint(
        company_id=actor.company_id,
        kind=kind,
        name=check_name(name),
        enabled=enabled,
        created_at=utcnow(),
    )
    secret = ""
    if kind == "webhook":
        if recipients:
            raise ApiError(422, "invalid_endpoint", "a webhook has a url, not recipients")
        endpoint.url = check_url(url or "")
        secret = endpoint.secret = secrets.token_urlsafe(32)
    else:
        if url:
            raise ApiError(422, "invalid_endpoint", "an e-mail endpoint has recipients, not a url")
        endpoint.recipients = check_recipients(recipients or [])
    session.add(endpoint)
    await session.flush()
    _record(session, actor, endpoint, "create", **_public_detail(endpoint))
    return WithSecret(endpoint, secret)


async def update_endpoint(
    session: AsyncSession,
    actor: User,
    endpoint: AlertEndpoint,
    *,
    name: str | None = None,
    url: str | None = None,
    recipients: list[str] | None = None,
    enabled: bool | None = None,
) -> AlertEndpoint:
    if url is not None and endpoint.kind != "webhook":
        raise ApiError(422, "invalid_endpoint", "an e-mail endpoint has recipients, not a url")
    if recipients is not None and endpoint.kind != "email":
        raise ApiError(422, "invalid_endpoint", "a webhook has a url, not recipients")
    changed: list[str] = []
    if name is not None and check_name(name) != endpoint.name:
        endpoint.name = check_name(name)
        changed.append("name")
    if url is not None and check_url(url) != endpoint.url:
        endpoint.url = check_url(url)
        changed.append("url")
    if recipients is not None and check_recipients(recipients) != endpoint.recipients:
        endpoint.recipients = check_recipients(recipients)
        changed.append("recipients")
    if enabled is not None and enabled != endpoint.enabled:
        endpoint.enabled = enabled
        changed.append("enabled")
    if changed:
        _record(session, actor, endpoint, "update", changed=changed, **_public_detail(endpoint))
        await session.flush()
    return endpoint


async def rotate_secret(session: AsyncSession, actor: User, endpoint: AlertEndpoint) -> WithSecret:
    """A webhook's new signing secret (the old one stops at once); shown once."""
    if endpoint.kind != "webhook":
        raise ApiError(409, "not_a_webhook", "only webhook endpoints have a signing secret")
    endpoint.secret = secrets.token_urlsafe(32)
    _record(session, actor, endpoint, "rotate_secret")
    await session.flush()
    return WithSecret(endpoint, endpoint.secret)


async def delete_endpoint(session: AsyncSession, actor: User, endpoint: AlertEndpoint) -> None:
    """The endpoint and its delivery log rows (pending ones are not sent any more)."""
    _record(session, actor, endpoint, "delete")
    await session.execute(delete(AlertDelivery).where(AlertDelivery.endpoint_id == endpoint.id))
    await session.execute(delete(AlertEndpoint).where(AlertEndpoint.id == endpoint.id))


async def send_test(
    session: AsyncSession, actor: User, endpoint: AlertEndpoint
) -> list[AlertDelivery]:
    """Queue the endpoint's "send test" notices (the delivery worker sends them), even while it
    is disabled: the admin asked for this one."""
    rows = await enqueue_test(session, endpoint, utcnow())
    await session.flush()
    _record(session, actor, endpoint, "test", deliveries=[str(r.id) for r in rows])
    return rows


# --- subscriptions ---------------------------------------------------------------------------


async def subscriptions(session: AsyncSession, user: User) -> list[dict[str, Any]]:
    """Every site of the user's company, with whether the user is subscribed to it."""
    mine = {
        row.site_id: row
        for row in await session.scalars(
            select(AlertSubscription).where(AlertSubscription.user_id == user.id)
        )
    }
    stmt = (
        select(Site, Community.name)
        .join(Community, Community.id == Site.community_id)
        .where(Site.company_id == user.company_id)
        .order_by(Community.name, Site.name)
    )
    return [
        {
            "site_id": str(site.id),
            "site": site.name,
            "community": community,
            "subscribed": site.id in mine,
            "since": _iso(mine[site.id].created_at) if site.id in mine else None,
        }
        for site, community in (await session.execute(stmt)).all()
    ]


async def subscribe(session: AsyncSession, user: User, site_id: str, on: bool) -> Site:
    """Subscribe the user to a site of their company (idempotent), or unsubscribe."""
    site = await get_site_for_user(session, user, site_id)
    row = await session.get(AlertSubscription, (user.id, site.id))
    if on and row is None:
        session.add(AlertSubscription(user_id=user.id, site_id=site.id, created_at=utcnow()))
    elif not on and row is not None:
        await session.delete(row)
    else:
        return site
    record_change(
        session,
        actor=user,
        company_id=user.company_id,
        action="alerts.subscribe" if on else "alerts.unsubscribe",
        object_type="site",
        object_id=str(site.id),
        detail={"site": site.name, "user": user.email},
    )
    await session.flush()
    return site
