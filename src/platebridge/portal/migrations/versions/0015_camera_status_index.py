"""cameras (status): the fleet's camera counts by status for ``GET /metrics``

``SELECT status, count(*) FROM cameras GROUP BY status`` over 40,000 cameras: 11 ms on SQLite
with a temporary b-tree for the grouping, 1.9 ms as a scan of this index (bench/metrics.py,
docs/metrics.md). A camera's status changes rarely, so the index costs the heartbeat little.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 03:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cameras", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cameras_status"), ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("cameras", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cameras_status"))
