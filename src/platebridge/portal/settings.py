"""Portal settings, read from ``PLATEBRIDGE_*`` environment variables (built in the app factory)."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_POD_NETWORKS = "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,100.64.0.0/10,fd7a:115c:a1e0::/48"
DEFAULT_SQLITE_FILE = "platebridge.db"


def normalize_database_url(url: str | None) -> str:
    """Translate the URLs users type into async SQLAlchemy URLs.

    unset → ``sqlite+aiosqlite:///<cwd>/platebridge.db``; ``postgres(ql)://`` →
    ``postgresql+asyncpg://``; ``sqlite:///path`` → ``sqlite+aiosqlite:///path``.
    """
    if not url:
        return f"sqlite+aiosqlite:///{Path.cwd() / DEFAULT_SQLITE_FILE}"
    for prefix in (
        "postgresql://",
        "postgres://",
        "postgresql+psycopg2://",
        "postgresql+psycopg://",
    ):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    if url.startswith("sqlite://") and not url.startswith("sqlite+"):
        return "sqlite+aiosqlite://" + url[len("sqlite://") :]
    if url.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
        return url
    raise ValueError("database_url must be a postgresql:// or sqlite:/// URL")


class PortalSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PLATEBRIDGE_", extra="forbid", populate_by_name=True
    )

    environment: Literal["development", "production"] = Field(
        default="development",
        description="`production` makes `serve` refuse to start while a setting is left at its "
        "development default (see `production_problems`).",
    )
    database_url: str = Field(
        default="",
        description="postgresql://… or sqlite:///path; unset: platebridge.db in the working dir.",
    )
    offline_after: int = Field(
        default=300,
        ge=1,
        le=86_400,
        description="Seconds without a heartbeat after which a pod is shown offline.",
    )
    heartbeat_interval: int = Field(
        default=60, ge=1, le=3600, description="Seconds between heartbeats, told to PODs."
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Signing key for CSRF etc. Unset: generated once and kept in the database.",
    )
    pod_stream_secret: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("PLATEBRIDGE_POD_STREAM_SECRET", "POD_STREAM_SECRET"),
        description="Portal-wide fallback stream secret for pods without their own.",
    )
    pod_networks: str = Field(
        default=DEFAULT_POD_NETWORKS,
        max_length=4096,
        description="Comma-separated CIDRs a POD's reported address may lie in.",
    )
    session_ttl: int = Field(
        default=12 * 3600, ge=60, le=90 * 86_400, description="Login session lifetime, seconds."
    )
    migrate_on_start: bool = Field(
        default=True,
        description="Run Alembic migrations when `serve` starts (both SQLite and PostgreSQL).",
    )
    cookie_secure: bool = Field(
        default=False, description="Mark the session cookie Secure (set behind HTTPS)."
    )
    trusted_proxies: str = Field(
        default="",
        max_length=1024,
        pattern=r"^[0-9A-Fa-f.:/, ]*$",
        description="Comma-separated addresses or CIDRs of the reverse proxies (nginx) whose "
        "X-Forwarded-For / X-Forwarded-Proto are believed; the client address of the "
        "throttle and the audit trail is then the viewer's, not the proxy's. Unset: the TCP "
        "peer, and forwarded headers are ignored.",
    )
    node_modules_dir: str = Field(
        default="",
        max_length=4096,
        description="The front-end packages (npm ci) the portal serves hls.js from; unset: "
        "./node_modules, else the node_modules of the source checkout the portal runs from.",
    )
    stream_token_ttl: int = Field(
        default=3600,
        ge=2,
        le=86_400,
        description="Lifetime of the stream tokens handed to viewers, seconds (spec: 1 hour).",
    )
    upstream_token_ttl: int = Field(
        default=60,
        ge=4,
        le=3600,
        description="Lifetime of the portal's own POD-side tokens (re-signed at half-life).",
    )
    stream_auth_cache_seconds: float = Field(
        default=2.0,
        ge=0,
        le=30,
        description="Proxy: how long one portal process reuses a viewer's authorisation (session "
        "or stream token -> user, pod, camera) before checking the database again; also the "
        "bound on how stale a revoked session, a deleted camera or a pod's address may be for "
        "the proxy routes. 0 turns the cache off.",
    )
    stream_connect_timeout: float = Field(
        default=3.0, gt=0, le=60, description="Proxy: TCP connect timeout to a POD, seconds."
    )
    stream_read_timeout: float = Field(
        default=10.0, gt=0, le=300, description="Proxy: per-read timeout from a POD, seconds."
    )

    throttle_login_per_ip: int = Field(
        default=20, ge=1, le=100_000, description="Failed sign-ins per source IP per window."
    )
    throttle_login_per_account: int = Field(
        default=10,
        ge=1,
        le=100_000,
        description="Failed sign-ins per account per window before failing sources wait.",
    )
    throttle_login_window: float = Field(
        default=300, gt=0, le=86_400, description="Sign-in throttling window, seconds."
    )
    throttle_heartbeat_per_ip: int = Field(
        default=30, ge=1, le=100_000, description="Refused heartbeat keys per source IP per window."
    )
    throttle_heartbeat_window: float = Field(
        default=60, gt=0, le=86_400, description="Heartbeat-key throttling window, seconds."
    )

    redis_url: SecretStr | None = Field(
        default=None,
        description="redis://… for several portal processes (tunnel registry); unset: one "
        "process, tunnels tracked in memory.",
    )
    node_url: str = Field(
        default="",
        max_length=512,
        pattern=r"^(https?://[^\s/?#]+)?$",
        description="This process's internal base URL, reachable by the other portal processes "
        "(e.g. http://10.0.0.3:8080): requests for tunnels held here are forwarded to it.",
    )
    tunnel_registry_ttl: int = Field(
        default=15,
        ge=3,
        le=300,
        description="Seconds a tunnel's registry entry lives unless refreshed (every ttl/3).",
    )
    tunnel_window: int = Field(
        default=256 * 1024,
        ge=64 * 1024,
        le=16 * 1024 * 1024,
        description="Flow-control credit per tunnelled request, bytes.",
    )
    tunnel_max_streams: int = Field(
        default=64, ge=1, le=1024, description="Concurrent requests per POD tunnel."
    )

    # E-mail (invitations, password resets; portal/mail.py). No smtp_host: links are shown on
    # screen once instead of being mailed.
    smtp_host: str = Field(
        default="",
        max_length=253,
        pattern=r"^[A-Za-z0-9.:\[\]_-]*$",
        description="SMTP server host name or address; unset: no e-mail, invitation and reset "
        "links are shown once on screen to the admin who made them.",
    )
    smtp_port: int = Field(
        default=587, ge=1, le=65_535, description="SMTP server port (587 STARTTLS, 465 SSL)."
    )
    smtp_security: Literal["none", "starttls", "ssl"] = Field(
        default="starttls",
        description="`starttls` (upgrade a plain connection, required), `ssl` (TLS from the "
        "first byte) or `none` (plain text: only for a relay on the same host).",
    )
    smtp_username: str = Field(
        default="", max_length=320, description="SMTP login; unset: no authentication."
    )
    smtp_password: SecretStr | None = Field(
        default=None, description="SMTP password (with smtp_username)."
    )
    smtp_from: str = Field(
        default="",
        max_length=320,
        description="The From address of the portal's e-mail (e.g. PlateBridge "
        "<noreply@example.com>); unset: noreply@<smtp_host>.",
    )
    smtp_timeout: float = Field(
        default=10.0, gt=0, le=120, description="Seconds one SMTP conversation may take."
    )
    smtp_ca_file: str = Field(
        default="",
        max_length=4096,
        description="PEM file of the CA(s) that sign the SMTP server's certificate; unset: the "
        "system's trust store. The certificate and host name are always verified.",
    )
    public_url: str = Field(
        default="",
        max_length=512,
        pattern=r"^(https?://[^\s/?#]+)?$",
        description="The portal's address as users reach it (https://portal.example.com), used "
        "in e-mailed links; unset: the address the admin's request came to.",
    )
    user_link_ttl: int = Field(
        default=72 * 3600,
        ge=300,
        le=30 * 86_400,
        description="Lifetime of invitation and password-reset links, seconds (default 72 h).",
    )

    # Alerts (portal/alerts, docs/alerts.md): every portal process runs the evaluation pass
    # and the delivery worker; the database makes each incident and each notice happen once.
    alerts_enabled: bool = Field(
        default=True, description="Run the alert evaluation and delivery in this process."
    )
    alert_check_interval: float = Field(
        default=30.0,
        ge=0.05,
        le=3600,
        description="Seconds between alert evaluation passes (and delivery polls).",
    )
    alert_delivery_lease: float = Field(
        default=60.0,
        ge=1,
        le=3600,
        description="Seconds one process holds a notice it is sending; a process that dies "
        "mid-send loses it after this and another process sends it again.",
    )
    alert_webhook_timeout: float = Field(
        default=10.0, gt=0, le=60, description="Seconds one webhook request may take."
    )
    alert_retry_window: int = Field(
        default=25 * 3600,
        ge=60,
        le=7 * 86_400,
        description="Seconds a notice is retried (with back-off) before it is marked failed.",
    )
    alert_webhook_networks: str = Field(
        default="",
        max_length=4096,
        description="Private or loopback networks (CIDRs) webhooks may be sent to; public "
        "addresses are always allowed, everything else refused (the SSRF rules of ssrf.py).",
    )

    # Metrics (GET /metrics, docs/metrics.md): off unless a token or networks are set.
    metrics_token: SecretStr | None = Field(
        default=None,
        min_length=16,
        max_length=512,
        description="Bearer token a scraper must send to read /metrics (16+ characters).",
    )
    metrics_networks: str = Field(
        default="",
        max_length=4096,
        description="Comma-separated CIDRs of the client addresses that may read /metrics; "
        "with metrics_token as well, both must hold. Neither set: /metrics answers 404.",
    )

    @field_validator("database_url")
    @classmethod
    def _normalize_url(cls, value: str) -> str:
        return normalize_database_url(value)

    @field_validator("pod_networks")
    @classmethod
    def _valid_networks(cls, value: str) -> str:
        for part in value.split(","):
            if part.strip():
                try:
                    ipaddress.ip_network(part.strip(), strict=False)
                except ValueError:
                    raise ValueError(f"not a CIDR network: {part.strip()!r}") from None
        return value

    @field_validator("trusted_proxies", "metrics_networks")
    @classmethod
    def _valid_proxies(cls, value: str) -> str:
        for part in value.split(","):
            if part.strip():
                try:
                    ipaddress.ip_network(part.strip(), strict=False)
                except ValueError:
                    raise ValueError(f"not an address or CIDR: {part.strip()!r}") from None
        return value

    def production_problems(self) -> list[str]:
        """Settings left at a development default; `serve` refuses to start in production
        while any is listed (each names the variable to set)."""
        if self.environment != "production":
            return []
        problems = []
        if self.is_sqlite:
            problems.append("PLATEBRIDGE_DATABASE_URL must be a postgresql:// URL (not SQLite)")
        key = self.secret_key.get_secret_value() if self.secret_key else ""
        if len(key) < 32:
            problems.append("PLATEBRIDGE_SECRET_KEY must be set (at least 32 characters)")
        if not self.cookie_secure:
            problems.append("PLATEBRIDGE_COOKIE_SECURE must be true (served over HTTPS)")
        if self.migrate_on_start:
            problems.append(
                "PLATEBRIDGE_MIGRATE_ON_START must be false (run `platebridge-portal migrate` "
                "once per deploy, not in every process)"
            )
        if self.node_url and self.redis_url is None:
            problems.append("PLATEBRIDGE_REDIS_URL must be set when PLATEBRIDGE_NODE_URL is")
        return problems

    @property
    def pod_network_list(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [
            ipaddress.ip_network(p.strip(), strict=False)
            for p in self.pod_networks.split(",")
            if p.strip()
        ]

    @property
    def metrics_network_list(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [
            ipaddress.ip_network(p.strip(), strict=False)
            for p in self.metrics_networks.split(",")
            if p.strip()
        ]

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
