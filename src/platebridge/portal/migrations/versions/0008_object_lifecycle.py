"""object lifecycle (placeholder, filled in by the issue 15 object lifecycle work; no-op until then)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 18:15:00
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
