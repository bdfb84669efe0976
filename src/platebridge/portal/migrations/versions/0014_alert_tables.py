"""alert tables (issue 14): settings, incidents, endpoints, subscriptions, deliveries.

The placeholders 0010 and 0011 stay no-ops: databases already past them would never run them.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 19:26:15.561480
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alert_endpoints",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("secret", sa.String(length=128), nullable=False),
        sa.Column("recipients", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('webhook', 'email')", name=op.f("ck_alert_endpoints_kind")),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_alert_endpoints_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_endpoints")),
    )
    with op.batch_alter_table("alert_endpoints", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_alert_endpoints_company_id"), ["company_id"], unique=False
        )

    op.create_table(
        "alert_settings",
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column("rules", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_alert_settings_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("company_id", name=op.f("pk_alert_settings")),
    )
    op.create_table(
        "alert_subscriptions",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("site_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["sites.id"],
            name=op.f("fk_alert_subscriptions_site_id_sites"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_alert_subscriptions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "site_id", name=op.f("pk_alert_subscriptions")),
    )
    with op.batch_alter_table("alert_subscriptions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_alert_subscriptions_site_id"), ["site_id"], unique=False
        )

    op.create_table(
        "alert_incidents",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("open_key", sa.String(length=160), nullable=True),
        sa.Column("pod_id", sa.Uuid(), nullable=False),
        sa.Column("camera_id", sa.String(length=64), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("clear_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("detail", sa.String(length=500), nullable=False),
        sa.CheckConstraint(
            "kind IN ('pod_offline', 'camera_error', 'codec_unplayable', "
            "'recording_stopped', 'disk_low', 'tunnel_down')",
            name=op.f("ck_alert_incidents_kind"),
        ),
        sa.CheckConstraint(
            "state IN ('pending', 'open', 'resolved')", name=op.f("ck_alert_incidents_state")
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_alert_incidents_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["pod_id"], ["pods.id"], name=op.f("fk_alert_incidents_pod_id_pods"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_incidents")),
        sa.UniqueConstraint("open_key", name=op.f("uq_alert_incidents_open_key")),
    )
    with op.batch_alter_table("alert_incidents", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_alert_incidents_company_id_first_seen"),
            ["company_id", "first_seen"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_alert_incidents_pod_id"), ["pod_id"], unique=False)

    op.create_table(
        "alert_deliveries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column("incident_id", sa.Uuid(), nullable=True),
        sa.Column("endpoint_id", sa.Uuid(), nullable=True),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=320), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "channel IN ('webhook', 'email')", name=op.f("ck_alert_deliveries_channel")
        ),
        sa.CheckConstraint(
            "event IN ('opened', 'resolved', 'test')", name=op.f("ck_alert_deliveries_event")
        ),
        sa.CheckConstraint(
            "state IN ('pending', 'delivered', 'failed')", name=op.f("ck_alert_deliveries_state")
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_alert_deliveries_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["alert_endpoints.id"],
            name=op.f("fk_alert_deliveries_endpoint_id_alert_endpoints"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["alert_incidents.id"],
            name=op.f("fk_alert_deliveries_incident_id_alert_incidents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_deliveries")),
    )
    with op.batch_alter_table("alert_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_alert_deliveries_company_id_created_at"),
            ["company_id", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_alert_deliveries_incident_id"), ["incident_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_alert_deliveries_state_next_attempt_at"),
            ["state", "next_attempt_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("alert_deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_deliveries_state_next_attempt_at"))
        batch_op.drop_index(batch_op.f("ix_alert_deliveries_incident_id"))
        batch_op.drop_index(batch_op.f("ix_alert_deliveries_company_id_created_at"))

    op.drop_table("alert_deliveries")
    with op.batch_alter_table("alert_incidents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_incidents_pod_id"))
        batch_op.drop_index(batch_op.f("ix_alert_incidents_company_id_first_seen"))

    op.drop_table("alert_incidents")
    with op.batch_alter_table("alert_subscriptions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_subscriptions_site_id"))

    op.drop_table("alert_subscriptions")
    op.drop_table("alert_settings")
    with op.batch_alter_table("alert_endpoints", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_endpoints_company_id"))

    op.drop_table("alert_endpoints")
