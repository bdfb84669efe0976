"""listing indexes: cameras (pod_id, status), for the listings' status filter and counts

The paginated listings (issue 15, docs/portal.md "Pagination") read a page's cameras through
the unique (pod_id, camera_id) index, pods first; the status filter and the pods listing's
per-status camera counts use this one. A text search is a substring match (``lower(name) LIKE
'%q%'``) that no b-tree serves: it is bounded by the company's pods instead (bench/listing.py).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 18:15:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cameras", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_cameras_pod_id_status"), ["pod_id", "status"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("cameras", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cameras_pod_id_status"))
