"""new pods default to stream mode 'auto' (server default only; existing pods keep their mode)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _default(value: str | None) -> None:
    with op.batch_alter_table("pods", schema=None) as batch_op:
        batch_op.alter_column(
            "stream_mode",
            existing_type=sa.String(length=16),
            existing_nullable=False,
            server_default=value,
        )


def upgrade() -> None:
    _default("auto")


def downgrade() -> None:
    _default(None)
