"""recording (issue 13): the manager role, footage/share audit actions and ranges, share
links, the heartbeat's recording state (cameras.recording) and POD disk (pods.disk_*)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 22:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from alembic.operations import BatchOperations

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD_ACTIONS = "'token_issued', 'stream_started'"
_NEW_ACTIONS = (
    "'token_issued', 'stream_started', 'footage_view', 'footage_export', "
    "'share_created', 'share_opened', 'share_revoked'"
)
_CHECKS = {
    # table: (column, old values, new values)
    "users": ("role", "'admin', 'viewer'", "'admin', 'manager', 'viewer'"),
    "audit_events": ("action", _OLD_ACTIONS, _NEW_ACTIONS),
}


def _replace_check(batch_op: BatchOperations, table: str, new: bool) -> None:
    column, old_values, new_values = _CHECKS[table]
    name = batch_op.f(f"ck_{table}_{column}")
    batch_op.drop_constraint(name, type_="check")
    batch_op.create_check_constraint(name, f"{column} IN ({new_values if new else old_values})")


def upgrade() -> None:
    # batch mode: SQLite rebuilds the table (its CHECKs cannot be altered in place)
    with op.batch_alter_table("users", schema=None, recreate="auto") as batch_op:
        _replace_check(batch_op, "users", new=True)
    with op.batch_alter_table("audit_events", schema=None, recreate="auto") as batch_op:
        _replace_check(batch_op, "audit_events", new=True)
        batch_op.add_column(sa.Column("range_start", sa.Double(), nullable=True))
        batch_op.add_column(sa.Column("range_end", sa.Double(), nullable=True))
        batch_op.add_column(sa.Column("share_id", sa.Uuid(), nullable=True))
    with op.batch_alter_table("cameras", schema=None) as batch_op:
        batch_op.add_column(sa.Column("recording", sa.Text(), nullable=True))
    with op.batch_alter_table("pods", schema=None) as batch_op:
        batch_op.add_column(sa.Column("disk_total", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("disk_free", sa.BigInteger(), nullable=True))
    op.create_table(
        "share_links",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("secret_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column("camera_id", sa.Uuid(), nullable=False),
        sa.Column("clip_start", sa.Double(), nullable=False),
        sa.Column("clip_end", sa.Double(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("created_by_email", sa.String(length=320), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["camera_id"],
            ["cameras.id"],
            name=op.f("fk_share_links_camera_id_cameras"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_share_links_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_share_links")),
        sa.UniqueConstraint("secret_hash", name=op.f("uq_share_links_secret_hash")),
    )
    with op.batch_alter_table("share_links", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_share_links_company_id_created_at"),
            ["company_id", "created_at"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_share_links_camera_id"), ["camera_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("share_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_share_links_camera_id"))
        batch_op.drop_index(batch_op.f("ix_share_links_company_id_created_at"))
    op.drop_table("share_links")
    with op.batch_alter_table("pods", schema=None) as batch_op:
        batch_op.drop_column("disk_free")
        batch_op.drop_column("disk_total")
    with op.batch_alter_table("cameras", schema=None) as batch_op:
        batch_op.drop_column("recording")
    # The older schema knows neither the manager role nor the footage actions: managers keep
    # live view only (viewer), the footage and share rows go.
    op.execute("UPDATE users SET role = 'viewer' WHERE role = 'manager'")
    op.execute("DELETE FROM audit_events WHERE action NOT IN ('token_issued', 'stream_started')")
    with op.batch_alter_table("audit_events", schema=None, recreate="auto") as batch_op:
        batch_op.drop_column("share_id")
        batch_op.drop_column("range_end")
        batch_op.drop_column("range_start")
        _replace_check(batch_op, "audit_events", new=False)
    with op.batch_alter_table("users", schema=None, recreate="auto") as batch_op:
        _replace_check(batch_op, "users", new=False)
