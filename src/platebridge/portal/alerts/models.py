"""The alert tables (migrations 0010 and 0011); they share ``models.Base`` with the rest."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from platebridge.portal.models import Base, new_uuid, one_of

#: What went wrong (docs/alerts.md names the condition behind each).
IncidentKind = Literal[
    "pod_offline",
    "camera_error",
    "codec_unplayable",
    "recording_stopped",
    "disk_low",
    "tunnel_down",
]
#: ``pending``: seen, not yet for long enough (nothing sent); ``open``: alerted; ``resolved``:
#: clear for the recovery period (recovery notice sent).
IncidentState = Literal["pending", "open", "resolved"]
ChannelKind = Literal["webhook", "email"]
DeliveryEvent = Literal["opened", "resolved", "test"]
#: ``pending``: to be sent (again) at ``next_attempt_at``, possibly leased by one process;
#: ``delivered``: acknowledged (2xx / SMTP accepted); ``failed``: given up after the retry window.
DeliveryState = Literal["pending", "delivered", "failed"]


class AlertSettings(Base):
    """A company's alert conditions: JSON of ``rules.AlertRules`` (absent row: the defaults)."""

    __tablename__ = "alert_settings"
    company_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("companies.id", ondelete="CASCADE"), primary_key=True
    )
    rules: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime]


class AlertIncident(Base):
    """One incident: one condition on one pod (or one of its cameras) from onset to recovery.

    ``open_key`` is ``kind:pod:camera`` while the incident is not resolved and NULL after, so
    the unique index allows one live incident per subject on both backends (NULLs never clash).
    """

    __tablename__ = "alert_incidents"
    __table_args__ = (
        one_of("kind", IncidentKind),
        one_of("state", IncidentState),
        Index(None, "company_id", "first_seen"),
        Index(None, "pod_id"),
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    kind: Mapped[IncidentKind] = mapped_column(String(24))
    state: Mapped[IncidentState] = mapped_column(String(16))
    open_key: Mapped[str | None] = mapped_column(String(160), unique=True)
    pod_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pods.id", ondelete="CASCADE"))
    #: The camera's wire id; '' for a pod-level incident.
    camera_id: Mapped[str] = mapped_column(String(64), default="")
    #: When the condition began (pod offline: the last heartbeat).
    first_seen: Mapped[datetime]
    opened_at: Mapped[datetime | None]
    #: Last pass that saw the condition true.
    last_seen: Mapped[datetime]
    #: Since when the condition has been clear (None while it holds).
    clear_since: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    #: How many times the condition began within this incident (a flapping camera counts up).
    count: Mapped[int] = mapped_column(Integer, default=1)
    #: What the POD said (a camera's error, the codec), bounded; never a secret.
    detail: Mapped[str] = mapped_column(String(500), default="")


class AlertEndpoint(Base):
    """Where a company's alerts go: a webhook (URL + signing secret) or e-mail recipients."""

    __tablename__ = "alert_endpoints"
    __table_args__ = (one_of("kind", ChannelKind), Index(None, "company_id"))
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    kind: Mapped[ChannelKind] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    #: Webhook: the https/http URL (checked by the SSRF rules when sent); e-mail: ''.
    url: Mapped[str] = mapped_column(Text, default="")
    #: Webhook: the HMAC-SHA256 key (shown once at creation, never returned again); e-mail: ''.
    secret: Mapped[str] = mapped_column(String(128), default="")
    #: E-mail: comma-separated addresses; webhook: ''.
    recipients: Mapped[str] = mapped_column(Text, default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]


class AlertSubscription(Base):
    """A user who wants e-mail for one site's incidents (at the user's own address)."""

    __tablename__ = "alert_subscriptions"
    __table_args__ = (Index(None, "site_id"),)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    site_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime]


class AlertDelivery(Base):
    """One notice to one target (a webhook endpoint or one e-mail address), retried until it is
    acknowledged or the retry window ends. The payload is frozen when the row is made, so a
    retry sends the same bytes with the same delivery id (``id``)."""

    __tablename__ = "alert_deliveries"
    __table_args__ = (
        one_of("channel", ChannelKind),
        one_of("event", DeliveryEvent),
        one_of("state", DeliveryState),
        Index(None, "state", "next_attempt_at"),
        Index(None, "company_id", "created_at"),
        Index(None, "incident_id"),
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    #: None for a "send test" delivery.
    incident_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("alert_incidents.id", ondelete="CASCADE")
    )
    endpoint_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("alert_endpoints.id", ondelete="CASCADE")
    )
    event: Mapped[DeliveryEvent] = mapped_column(String(16))
    channel: Mapped[ChannelKind] = mapped_column(String(16))
    #: The e-mail address, or the webhook URL's scheme://host[:port] (never its path or query).
    target: Mapped[str] = mapped_column(String(320))
    state: Mapped[DeliveryState] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime]
    #: While one portal process is sending it: until when; another process may take it after.
    lease_until: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    delivered_at: Mapped[datetime | None]
    last_attempt_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    #: The JSON document sent (webhook body; the e-mail is rendered from it).
    payload: Mapped[str] = mapped_column(Text)
