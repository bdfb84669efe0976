"""object lifecycle: pods.decommissioned_at, cameras.display_name, cameras.missing_since

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 18:15:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("pods", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("decommissioned_at", sa.DateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("cameras", schema=None) as batch_op:
        batch_op.add_column(sa.Column("display_name", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("missing_since", sa.DateTime(timezone=True), nullable=True))
    # No backfill: the next heartbeat with a camera list marks the cameras it lacks.


def downgrade() -> None:
    with op.batch_alter_table("cameras", schema=None) as batch_op:
        batch_op.drop_column("missing_since")
        batch_op.drop_column("display_name")
    with op.batch_alter_table("pods", schema=None) as batch_op:
        batch_op.drop_column("decommissioned_at")
