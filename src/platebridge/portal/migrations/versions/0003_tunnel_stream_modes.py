"""stream modes 'tunnel' and 'auto' (Method 4), audit method 'tunnel'

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CHECKS = {
    # table: (constraint, column, old values, new values)
    "pods": (
        "stream_mode",
        "stream_mode",
        "'proxy', 'direct'",
        "'proxy', 'direct', 'tunnel', 'auto'",
    ),
    "audit_events": ("method", "method", "'proxy', 'direct'", "'proxy', 'direct', 'tunnel'"),
}


def _replace(values_index: int) -> None:
    for table, (name, column, *values) in _CHECKS.items():
        # batch mode: SQLite rebuilds the table (its CHECKs cannot be altered in place)
        with op.batch_alter_table(table, schema=None, recreate="auto") as batch_op:
            batch_op.drop_constraint(batch_op.f(f"ck_{table}_{name}"), type_="check")
            batch_op.create_check_constraint(
                batch_op.f(f"ck_{table}_{name}"), f"{column} IN ({values[values_index]})"
            )


def upgrade() -> None:
    _replace(1)


def downgrade() -> None:
    op.execute("UPDATE pods SET stream_mode = 'proxy' WHERE stream_mode IN ('tunnel', 'auto')")
    op.execute("UPDATE audit_events SET method = 'proxy' WHERE method = 'tunnel'")
    _replace(0)
