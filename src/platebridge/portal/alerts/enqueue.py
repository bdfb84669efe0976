"""The outbox: a notice becomes one ``AlertDelivery`` row per target, written in the transaction
that opened or resolved the incident (so it is sent once, or retried, but never lost).

Targets of a company's notice: every enabled webhook endpoint, every address of every enabled
e-mail endpoint, and the address of every enabled user subscribed to the incident's site. An
address reached twice (an endpoint and a subscription) gets one e-mail. The payload (schema
``platebridge.alert/1``, docs/alerts.md) is frozen into the row: a retry sends the same bytes.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from platebridge.portal.alerts.models import (
    AlertDelivery,
    AlertEndpoint,
    AlertIncident,
    AlertSubscription,
    DeliveryEvent,
)
from platebridge.portal.models import Camera, Community, Company, Pod, Site, User, new_uuid
from platebridge.portal.settings import PortalSettings

SCHEMA = "platebridge.alert/1"

#: What each kind of incident is called in a notice's title.
TITLES: dict[str, str] = {
    "pod_offline": "POD offline",
    "camera_error": "Camera in error",
    "codec_unplayable": "Camera codec not playable in browsers",
    "recording_stopped": "Recording stopped",
    "disk_low": "POD disk nearly full",
    "tunnel_down": "Tunnel down",
}


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def webhook_target(url: str) -> str:
    """What the delivery log shows of a webhook URL: scheme://host[:port], never path or query
    (which often carry a receiver's token)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"


def camera_link(settings: PortalSettings, pod_id: str, camera_id: str) -> str | None:
    """The camera's page on the portal (None without ``public_url``: no address to link)."""
    if not settings.public_url:
        return None
    path = f"/cameras/{quote(pod_id, safe='')}/{quote(camera_id, safe='')}"
    return settings.public_url.rstrip("/") + path


def incident_document(
    *,
    event: DeliveryEvent,
    delivery_id: uuid.UUID,
    incident: AlertIncident,
    company: Company,
    site: Site,
    community: Community,
    pod: Pod,
    camera: Camera | None,
    link: str | None,
) -> dict[str, Any]:
    """The notice as JSON (pure)."""
    camera_name = None if camera is None else (camera.display_name or camera.name)
    title = TITLES[incident.kind]
    subject = camera_name or pod.name
    return {
        "schema": SCHEMA,
        "delivery_id": str(delivery_id),
        "event": event,
        "title": f"{'Resolved: ' if event == 'resolved' else ''}{title}: {subject}",
        "company": {"id": str(company.id), "name": company.name},
        "incident": {
            "id": str(incident.id),
            "kind": incident.kind,
            "state": incident.state,
            "detail": incident.detail,
            "count": incident.count,
            "first_seen": _iso(incident.first_seen),
            "opened_at": _iso(incident.opened_at),
            "resolved_at": _iso(incident.resolved_at),
        },
        "community": {"id": str(community.id), "name": community.name},
        "site": {"id": str(site.id), "name": site.name},
        "pod": {"id": pod.pod_id, "name": pod.name},
        "camera": None if camera is None else {"id": camera.camera_id, "name": camera_name},
        "url": link,
    }


def test_document(delivery_id: uuid.UUID, company: Company, now: datetime) -> dict[str, Any]:
    """The "send test" notice (no incident)."""
    return {
        "schema": SCHEMA,
        "delivery_id": str(delivery_id),
        "event": "test",
        "title": "PlateBridge test notice",
        "company": {"id": str(company.id), "name": company.name},
        "incident": None,
        "sent_at": _iso(now),
    }


def _addresses(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _delivery(
    endpoint: AlertEndpoint | None,
    company_id: uuid.UUID,
    incident_id: uuid.UUID | None,
    event: DeliveryEvent,
    target: str,
    document: dict[str, Any],
    now: datetime,
    delivery_id: uuid.UUID,
) -> AlertDelivery:
    return AlertDelivery(
        id=delivery_id,
        company_id=company_id,
        incident_id=incident_id,
        endpoint_id=None if endpoint is None else endpoint.id,
        event=event,
        channel="webhook" if endpoint is not None and endpoint.kind == "webhook" else "email",
        target=target,
        state="pending",
        attempts=0,
        created_at=now,
        next_attempt_at=now,
        payload=json.dumps(document, separators=(",", ":"), sort_keys=True),
    )


async def enqueue_incident_notices(
    session: AsyncSession,
    incident: AlertIncident,
    event: DeliveryEvent,
    now: datetime,
    settings: PortalSettings,
) -> int:
    """Adds the notice of ``incident`` having ``event`` for each target; returns how many."""
    pod = await session.get(Pod, incident.pod_id)
    if pod is None:
        return 0
    site = await session.get(Site, pod.site_id)
    company = await session.get(Company, incident.company_id)
    assert site is not None and company is not None  # foreign keys
    community = await session.get(Community, site.community_id)
    assert community is not None
    camera = None
    if incident.camera_id:
        camera = (
            await session.execute(
                select(Camera).where(
                    Camera.pod_id == pod.id, Camera.camera_id == incident.camera_id
                )
            )
        ).scalar_one_or_none()
    link = camera_link(settings, pod.pod_id, incident.camera_id) if incident.camera_id else None
    endpoints = (
        await session.execute(
            select(AlertEndpoint).where(
                AlertEndpoint.company_id == company.id, AlertEndpoint.enabled.is_(True)
            )
        )
    ).scalars()
    subscribers = (
        await session.execute(
            select(User.email)
            .join(AlertSubscription, AlertSubscription.user_id == User.id)
            .where(
                AlertSubscription.site_id == site.id,
                User.company_id == company.id,
                User.disabled_at.is_(None),
            )
        )
    ).scalars()

    def document(delivery_id: uuid.UUID) -> dict[str, Any]:
        return incident_document(
            event=event,
            delivery_id=delivery_id,
            incident=incident,
            company=company,
            site=site,
            community=community,
            pod=pod,
            camera=camera,
            link=link,
        )

    rows: list[AlertDelivery] = []
    mailed: set[str] = set()
    email_endpoint: AlertEndpoint | None = None
    for endpoint in endpoints:
        if endpoint.kind == "webhook":
            delivery_id = new_uuid()
            rows.append(
                _delivery(
                    endpoint,
                    company.id,
                    incident.id,
                    event,
                    webhook_target(endpoint.url),
                    document(delivery_id),
                    now,
                    delivery_id,
                )
            )
            continue
        email_endpoint = email_endpoint or endpoint
        for address in _addresses(endpoint.recipients):
            if address.lower() in mailed:
                continue
            mailed.add(address.lower())
            delivery_id = new_uuid()
            rows.append(
                _delivery(
                    endpoint,
                    company.id,
                    incident.id,
                    event,
                    address,
                    document(delivery_id),
                    now,
                    delivery_id,
                )
            )
    for address in subscribers:
        if address.lower() in mailed:
            continue
        mailed.add(address.lower())
        delivery_id = new_uuid()
        rows.append(
            _delivery(
                None,
                company.id,
                incident.id,
                event,
                address,
                document(delivery_id),
                now,
                delivery_id,
            )
        )
    session.add_all(rows)
    return len(rows)


async def enqueue_test(
    session: AsyncSession, endpoint: AlertEndpoint, now: datetime
) -> list[AlertDelivery]:
    """The "send test" notices of one endpoint (one per address for e-mail)."""
    company = await session.get(Company, endpoint.company_id)
    assert company is not None
    targets = (
        [webhook_target(endpoint.url)]
        if endpoint.kind == "webhook"
        else _addresses(endpoint.recipients)
    )
    rows = []
    for target in targets:
        delivery_id = new_uuid()
        rows.append(
            _delivery(
                endpoint,
                company.id,
                None,
                "test",
                target,
                test_document(delivery_id, company, now),
                now,
                delivery_id,
            )
        )
    session.add_all(rows)
    return rows


def retry_deadline(delivery: AlertDelivery, settings: PortalSettings) -> datetime:
    """Until when a notice is retried."""
    return delivery.created_at + timedelta(seconds=settings.alert_retry_window)
