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
from typing import Any, cast
from urllib.parse import quote, urlsplit

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from platebridge.portal.alerts.evaluate import Incident
from platebridge.portal.alerts.models import (
    AlertDelivery,
    AlertEndpoint,
    AlertSubscription,
    DeliveryEvent,
)
from platebridge.portal.db import insert_rows
from platebridge.portal.models import Camera, Community, Company, Pod, Site, User, new_uuid
from platebridge.portal.settings import PortalSettings

SCHEMA = "platebridge.alert/1"
_DELIVERIES = cast(Table, AlertDelivery.__table__)

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
    incident: Incident,
    company: Company,
    site: Site,
    community: Community,
    pod: Pod,
    camera: Camera | None,
    link: str | None,
) -> dict[str, Any]:
    """The notice as JSON (pure)."""
    camera_name = None if camera is None else (camera.display_name or camera.name)
    title = TITLES[incident.subject.kind]
    subject = camera_name or pod.name
    return {
        "schema": SCHEMA,
        "delivery_id": str(delivery_id),
        "event": event,
        "title": f"{'Resolved: ' if event == 'resolved' else ''}{title}: {subject}",
        "company": {"id": str(company.id), "name": company.name},
        "incident": {
            "id": str(incident.id),
            "kind": incident.subject.kind,
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
) -> dict[str, Any]:
    """The ``alert_deliveries`` row of one notice to one target (column values)."""
    return {
        "id": delivery_id,
        "company_id": company_id,
        "incident_id": incident_id,
        "endpoint_id": None if endpoint is None else endpoint.id,
        "event": event,
        "channel": "webhook" if endpoint is not None and endpoint.kind == "webhook" else "email",
        "target": target,
        "state": "pending",
        "attempts": 0,
        "created_at": now,
        "next_attempt_at": now,
        "payload": json.dumps(document, separators=(",", ":"), sort_keys=True),
    }


class NoticeWriter:
    """Writes the notices of one pass. :meth:`load` reads everything the pass's incidents
    need in a few ``IN`` queries (pods, sites, communities, companies, cameras, endpoints,
    subscribers), and :meth:`write` inserts the rows :meth:`add` made in multi-row INSERTs, so a
    pass that opens thousands of incidents does not query or flush per incident."""

    def __init__(self, session: AsyncSession, now: datetime, settings: PortalSettings) -> None:
        self._session, self._now, self._settings = session, now, settings
        self._pods: dict[uuid.UUID, Pod] = {}
        self._sites: dict[uuid.UUID, Site] = {}
        self._communities: dict[uuid.UUID, Community] = {}
        self._companies: dict[uuid.UUID, Company] = {}
        self._cameras: dict[tuple[uuid.UUID, str], Camera] = {}
        self._endpoints: dict[uuid.UUID, list[AlertEndpoint]] = {}
        self._subscribers: dict[uuid.UUID, list[str]] = {}
        self._rows: list[dict[str, Any]] = []

    async def _all(self, model: Any, column: Any, keys: set[uuid.UUID]) -> list[Any]:
        found: list[Any] = []
        ordered = sorted(keys)
        for i in range(0, len(ordered), 1000):
            chunk = ordered[i : i + 1000]
            found += (await self._session.execute(select(model).where(column.in_(chunk)))).scalars()
        return found

    async def load(self, incidents: list[Incident]) -> None:
        pod_keys = {i.subject.pod_id for i in incidents}
        for pod in await self._all(Pod, Pod.id, pod_keys):
            self._pods[pod.id] = pod
        site_keys = {pod.site_id for pod in self._pods.values()}
        for site in await self._all(Site, Site.id, site_keys):
            self._sites[site.id] = site
        community_keys = {site.community_id for site in self._sites.values()}
        for community in await self._all(Community, Community.id, community_keys):
            self._communities[community.id] = community
        company_keys = {i.company_id for i in incidents}
        for company in await self._all(Company, Company.id, company_keys):
            self._companies[company.id] = company
        camera_pods = {i.subject.pod_id for i in incidents if i.subject.camera_id}
        for camera in await self._all(Camera, Camera.pod_id, camera_pods):
            self._cameras[(camera.pod_id, camera.camera_id)] = camera
        for endpoint in await self._all(AlertEndpoint, AlertEndpoint.company_id, company_keys):
            if endpoint.enabled:
                self._endpoints.setdefault(endpoint.company_id, []).append(endpoint)
        ordered = sorted(site_keys)
        for i in range(0, len(ordered), 1000):
            rows = await self._session.execute(
                select(AlertSubscription.site_id, User.email, User.company_id)
                .join(User, AlertSubscription.user_id == User.id)
                .where(
                    AlertSubscription.site_id.in_(ordered[i : i + 1000]),
                    User.disabled_at.is_(None),
                )
            )
            for site_id, email, company_id in rows:
                if self._sites[site_id].company_id == company_id:
                    self._subscribers.setdefault(site_id, []).append(email)

    def add(self, incident: Incident, event: DeliveryEvent) -> int:
        """The notice of ``incident`` (as written, with its id) having ``event``, one row per
        target (after :meth:`load`; inserted by :meth:`write`); returns how many rows."""
        camera_id = incident.subject.camera_id
        pod = self._pods.get(incident.subject.pod_id)
        if pod is None:
            return 0
        site = self._sites[pod.site_id]
        community = self._communities[site.community_id]
        company = self._companies[incident.company_id]
        camera = self._cameras.get((pod.id, camera_id)) if camera_id else None
        link = camera_link(self._settings, pod.pod_id, camera_id) if camera_id else None

        def row(endpoint: AlertEndpoint | None, target: str) -> dict[str, Any]:
            delivery_id = new_uuid()
            document = incident_document(
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
            return _delivery(
                endpoint, company.id, incident.id, event, target, document, self._now, delivery_id
            )

        rows: list[dict[str, Any]] = []
        mailed: set[str] = set()
        for endpoint in self._endpoints.get(company.id, []):
            if endpoint.kind == "webhook":
                rows.append(row(endpoint, webhook_target(endpoint.url)))
                continue
            for address in _addresses(endpoint.recipients):
                if address.lower() not in mailed:
                    mailed.add(address.lower())
                    rows.append(row(endpoint, address))
        for address in self._subscribers.get(site.id, []):
            if address.lower() not in mailed:
                mailed.add(address.lower())
                rows.append(row(None, address))
        self._rows += rows
        return len(rows)

    async def write(self) -> None:
        """Insert the rows of every :meth:`add` so far."""
        rows, self._rows = self._rows, []
        await insert_rows(self._session, _DELIVERIES, rows)


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
            AlertDelivery(
                **_delivery(
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
        )
    session.add_all(rows)
    return rows


def retry_deadline(delivery: AlertDelivery, settings: PortalSettings) -> datetime:
    """Until when a notice is retried."""
    return delivery.created_at + timedelta(seconds=settings.alert_retry_window)
