"""audit trail of admin changes (who changed which object, when)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 18:15:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "admin_changes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("company_id", sa.Uuid(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_user_id", sa.Uuid(), nullable=True),
        sa.Column("actor", sa.String(length=320), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("object_type", sa.String(length=32), nullable=False),
        sa.Column("object_id", sa.String(length=200), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_admin_changes_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_changes")),
    )
    with op.batch_alter_table("admin_changes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_admin_changes_company_id_at"), ["company_id", "at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("admin_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_admin_changes_company_id_at"))
    op.drop_table("admin_changes")
