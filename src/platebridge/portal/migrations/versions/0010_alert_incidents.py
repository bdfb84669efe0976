"""alert incidents (placeholder, filled in by the issue 14 alerts engine work; no-op until then)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 18:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
