"""Typed SQLAlchemy models. Internal keys are UUIDs; the wire uses slugs (``pod_id`` etc.).

Tenancy: company → community → site → pod → camera. Pods carry ``company_id`` (denormalised
from their site) so every tenant-scoped query is one indexed filter.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Literal, cast, get_args

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Dialect,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

DEFAULT_STREAM_PORT = 8000
#: How browsers reach a pod's streams (see docs/streaming.md and docs/tunnel.md).
StreamMode = Literal["proxy", "direct", "tunnel", "auto"]
STREAM_MODES: tuple[str, ...] = get_args(StreamMode)
#: A camera as the portal records it (the POD's ``starting`` arrives as ``inactive``).
CameraStatus = Literal["active", "inactive", "error"]
#: ``admin``: everything; ``manager``: live, footage, export and share links; ``viewer``: live
#: only (a guard). What each may do: ``scoping.ROLE_CAPABILITIES``.
Role = Literal["admin", "manager", "viewer"]
KeyKind = Literal["pod", "enrollment"]
AuditAction = Literal[
    "token_issued",
    "stream_started",
    "footage_view",
    "footage_export",
    "share_created",
    "share_opened",
    "share_revoked",
]
AuditMethod = Literal["proxy", "direct", "tunnel"]
#: What a :class:`UserLink` is for.
LinkPurpose = Literal["invite", "reset"]


def as_stream_mode(value: str) -> StreamMode | None:
    """``value`` as a :data:`StreamMode`, or None when it is not one."""
    for mode in get_args(StreamMode):
        if mode == value:
            return cast(StreamMode, mode)
    return None


def one_of(column: str, allowed: object) -> CheckConstraint:
    """The CHECK constraint of an enumerated column, generated from its ``Literal`` type so the
    Python type and the database rule cannot drift apart (the migrations write the same text)."""
    values = ", ".join(f"'{value}'" for value in get_args(allowed))
    return CheckConstraint(f"{column} IN ({values})", name=column)


def new_uuid() -> uuid.UUID:
    return uuid.uuid4()


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on both backends (SQLite keeps naive UTC text, so compare as UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), uuid.UUID: Uuid()}


class Company(Base):
    __tablename__ = "companies"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime]


class Community(Base):
    __tablename__ = "communities"
    __table_args__ = (UniqueConstraint("company_id", "name"),)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]


class Site(Base):
    __tablename__ = "sites"
    __table_args__ = (UniqueConstraint("community_id", "name"), Index(None, "company_id"))
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    community_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("communities.id", ondelete="CASCADE")
    )
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]


class Pod(Base):
    __tablename__ = "pods"
    __table_args__ = (
        UniqueConstraint("company_id", "pod_id"),
        Index(None, "site_id"),
        one_of("stream_mode", StreamMode),
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    pod_id: Mapped[str] = mapped_column(String(64))
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    site_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    ip_address: Mapped[str | None] = mapped_column(String(45))
    last_heartbeat: Mapped[datetime | None]
    #: What the POD last reported ('online' / 'error'); read through ``effective_pod_status``.
    status: Mapped[str] = mapped_column(String(16), default="offline")
    firmware_version: Mapped[str | None] = mapped_column(String(64))
    stream_token_secret: Mapped[str] = mapped_column(String(128))
    stream_port: Mapped[int] = mapped_column(Integer, default=DEFAULT_STREAM_PORT)
    stream_mode: Mapped[StreamMode] = mapped_column(String(16), default="proxy")
    #: Digest of the last heartbeat's content (ip, port, status, firmware, cameras): a heartbeat
    #: with the same digest only refreshes ``last_heartbeat`` (the fast path).
    heartbeat_digest: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime]
    #: Set while an admin has decommissioned the pod: keys revoked, stream secret voided, no
    #: heartbeat accepted, its cameras out of every list (``services.pod_lifecycle``).
    decommissioned_at: Mapped[datetime | None]
    #: The POD's recording filesystem from the heartbeat (bytes; None: not reported).
    disk_total: Mapped[int | None] = mapped_column(BigInteger)
    disk_free: Mapped[int | None] = mapped_column(BigInteger)


class Camera(Base):
    __tablename__ = "cameras"
    __table_args__ = (
        UniqueConstraint("pod_id", "camera_id"),
        one_of("status", CameraStatus),
        #: The listings' status filter and the pods listing's per-status camera counts
        #: (index-only on PostgreSQL); migration 0009.
        Index(None, "pod_id", "status"),
        #: The fleet's camera counts by status (``GET /metrics``); migration 0015.
        Index(None, "status"),
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    pod_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pods.id", ondelete="CASCADE"))
    camera_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    stream_url: Mapped[str] = mapped_column(Text)
    status: Mapped[CameraStatus] = mapped_column(String(16), default="active")
    position: Mapped[str] = mapped_column(String(200), default="")
    error: Mapped[str | None] = mapped_column(String(500))
    #: Without credentials (``core.redact.strip_credentials``); never returned by the API.
    rtsp_url: Mapped[str | None] = mapped_column(Text)
    #: What the camera (and its substream) sends, from the heartbeat: compact JSON of
    #: ``core.heartbeat.CameraMedia`` (validated and bounded there), None when not reported.
    media: Mapped[str | None] = mapped_column(Text)
    sub_media: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    #: The admin's name for the camera (lists show it when set); the heartbeat never touches
    #: it and keeps ``name`` as the POD's config says.
    display_name: Mapped[str | None] = mapped_column(String(200))
    #: Since when the POD's camera list no longer has this camera (None: it reports it). Only
    #: such a camera can be removed by an admin; a heartbeat that reports it again clears this.
    missing_since: Mapped[datetime | None]
    #: The camera's recording on its POD from the heartbeat: compact JSON of
    #: ``core.heartbeat.CameraRecording``, None when not reported.
    recording: Mapped[str | None] = mapped_column(Text)


class CameraName(Base):
    """The display name of a camera an admin removed (``services.camera_admin``), kept so
    that the camera comes back with it when its POD reports it again: the heartbeat's insert
    of a new camera row reads it (migration 0013). Only the removal writes it."""

    __tablename__ = "camera_names"
    pod_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("pods.id", ondelete="CASCADE"), primary_key=True
    )
    camera_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200))
    removed_at: Mapped[datetime]


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        one_of("role", Role),
        Index(None, "company_id"),
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(String(16))
    created_at: Mapped[datetime]
    #: Set while the user is disabled: no sign-in, no session, no stream token is accepted.
    disabled_at: Mapped[datetime | None]
    #: When the password was last set (by the user, a link or the CLI); None: never (an
    #: invited user who has not accepted yet has no usable password).
    password_changed_at: Mapped[datetime | None]


class UserLink(Base):
    """A single-use invitation or password-reset link, stored as SHA-256 of its token (like
    sessions and keys); the token itself is only ever in the e-mail or shown once."""

    __tablename__ = "user_links"
    __table_args__ = (
        one_of("purpose", LinkPurpose),
        Index(None, "user_id"),
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    purpose: Mapped[LinkPurpose] = mapped_column(String(16))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    #: Set when the link was used, or voided by a newer link, a disable or a password change.
    used_at: Mapped[datetime | None]


class ApiKey(Base):
    """A ``pbk_`` key, stored as SHA-256 of the full key. ``kind`` 'pod' binds ``pod_id``,
    'enrollment' binds ``site_id``."""

    __tablename__ = "api_keys"
    __table_args__ = (
        one_of("kind", KeyKind),
        Index(None, "pod_id"),
        Index(None, "site_id"),
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    key_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    kind: Mapped[KeyKind] = mapped_column(String(16))
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    pod_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("pods.id", ondelete="CASCADE"))
    site_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class Session(Base):
    """A login session; the opaque token is stored as SHA-256 so logout really revokes it."""

    __tablename__ = "sessions"
    __table_args__ = (Index(None, "user_id"),)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class Setting(Base):
    """Portal-wide key/value (the generated ``secret_key`` lives here)."""

    __tablename__ = "portal_settings"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class AuditEvent(Base):
    """One stream access: a token issued or a proxied viewing started (append-only history).

    Users, pods and cameras are kept as values (id, e-mail, wire ids), not foreign keys, so the
    trail outlives the rows it mentions; only the company owns (and scopes) it.
    """

    __tablename__ = "audit_events"
    __table_args__ = (
        one_of("action", AuditAction),
        one_of("method", AuditMethod),
        Index(None, "company_id", "at"),
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    at: Mapped[datetime]
    user_id: Mapped[uuid.UUID | None]
    user_email: Mapped[str | None] = mapped_column(String(320))
    pod_id: Mapped[str] = mapped_column(String(64))
    camera_id: Mapped[str] = mapped_column(String(64))
    action: Mapped[AuditAction] = mapped_column(String(16))
    method: Mapped[AuditMethod] = mapped_column(String(16))
    client_ip: Mapped[str | None] = mapped_column(String(45))
    #: Footage and share rows: the recorded range concerned (epoch seconds), else None.
    range_start: Mapped[float | None] = mapped_column(Double)
    range_end: Mapped[float | None] = mapped_column(Double)
    #: Share rows: the share link concerned (a value, like the user: the trail outlives it).
    share_id: Mapped[uuid.UUID | None]


class ShareLink(Base):
    """A no-login link to one clip (``services.shares``): stored as SHA-256 of its secret (the
    URL is shown once), bound to one camera and range, until ``expires_at`` or revocation."""

    __tablename__ = "share_links"
    __table_args__ = (Index(None, "company_id", "created_at"), Index(None, "camera_id"))
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    #: The camera row (its pod through it): a removed camera takes its links with it.
    camera_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"))
    #: The clip, epoch seconds.
    clip_start: Mapped[float] = mapped_column(Double)
    clip_end: Mapped[float] = mapped_column(Double)
    created_by: Mapped[uuid.UUID | None]
    created_by_email: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class AdminChange(Base):
    """One change made by an admin or an operator (create, rename, disable, delete, …).

    Like :class:`AuditEvent`, the actor and the object are kept as values so the trail outlives
    them. ``company_id`` is None for operator-level changes (a company created from the CLI).
    ``detail`` is a JSON object of what changed — never a secret, a password or a link.
    """

    __tablename__ = "admin_changes"
    __table_args__ = (Index(None, "company_id", "at"),)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    company_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("companies.id", ondelete="CASCADE")
    )
    at: Mapped[datetime]
    actor_user_id: Mapped[uuid.UUID | None]
    #: The admin's e-mail, or ``operator`` for the CLI.
    actor: Mapped[str] = mapped_column(String(320))
    #: ``<object>.<verb>``: ``user.disable``, ``pod.move``, ``site.rename``, …
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str] = mapped_column(String(200))
    detail: Mapped[str] = mapped_column(Text, default="{}")
