"""camera display names kept across removal: camera_names (issue 15)

An admin may remove a camera its POD stopped reporting (``services.camera_admin``); the POD
reporting it again brings it back as a new row. Its display name (the admin's, never the
POD's) is kept here at the removal and taken by the heartbeat's insert of the new row. One
row per (pod, camera id); the pod's deletion takes them with it.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 22:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "camera_names",
        sa.Column("pod_id", sa.Uuid(), nullable=False),
        sa.Column("camera_id", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["pod_id"], ["pods.id"], name=op.f("fk_camera_names_pod_id_pods"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("pod_id", "camera_id", name=op.f("pk_camera_names")),
    )


def downgrade() -> None:
    op.drop_table("camera_names")
