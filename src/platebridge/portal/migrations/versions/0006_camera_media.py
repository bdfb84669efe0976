"""camera media: what each camera (and its substream) sends, as its POD reports it

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 18:15:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cameras", schema=None) as batch_op:
        batch_op.add_column(sa.Column("media", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("sub_media", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cameras", schema=None) as batch_op:
        batch_op.drop_column("sub_media")
        batch_op.drop_column("media")
