"""Enumerated columns: the ORM's ``Literal`` types, the models' CHECK constraints and the
migrated schema of both databases allow exactly the same values.

``models.one_of`` generates each CHECK from its ``Literal``; this test reads the constraints back
from a database migrated by Alembic, so a migration that forgets a new value (or a Literal that
grows without a migration) fails here.
"""

from __future__ import annotations

import re
from typing import get_args

import pytest
from sqlalchemy import CheckConstraint

from platebridge.portal import models
from platebridge.portal.schema import alert_models, metadata
from tests.support.portal import is_postgres, sql

#: (table, column) → the Literal the column is typed with.
ENUMERATED = {
    ("pods", "stream_mode"): models.StreamMode,
    ("cameras", "status"): models.CameraStatus,
    ("users", "role"): models.Role,
    ("user_links", "purpose"): models.LinkPurpose,
    ("api_keys", "kind"): models.KeyKind,
    ("audit_events", "action"): models.AuditAction,
    ("audit_events", "method"): models.AuditMethod,
    ("alert_incidents", "kind"): alert_models.IncidentKind,
    ("alert_incidents", "state"): alert_models.IncidentState,
    ("alert_endpoints", "kind"): alert_models.ChannelKind,
    ("alert_deliveries", "channel"): alert_models.ChannelKind,
    ("alert_deliveries", "event"): alert_models.DeliveryEvent,
    ("alert_deliveries", "state"): alert_models.DeliveryState,
}


def _values(check_text: str) -> set[str]:
    return set(re.findall(r"'([^']*)'", check_text))


def _model_checks() -> dict[tuple[str, str], set[str]]:
    out = {}
    for table in metadata.tables.values():
        for constraint in table.constraints:
            if isinstance(constraint, CheckConstraint):
                column = str(constraint.sqltext).split(" IN ", 1)[0]
                out[(table.name, column)] = _values(str(constraint.sqltext))
    return out


def _schema_check(db_url: str, table: str, column: str) -> set[str]:
    if is_postgres(db_url):
        rows = sql(
            db_url,
            "SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c "
            "JOIN pg_class t ON t.oid = c.conrelid WHERE t.relname = :t AND c.contype = 'c' "
            "AND c.conname = :n",
            t=table,
            n=f"ck_{table}_{column}",
        )
        assert len(rows) == 1, f"no CHECK ck_{table}_{column} in the migrated schema"
        return _values(rows[0][0])
    (create,) = sql(db_url, "SELECT sql FROM sqlite_master WHERE name = :t", t=table)[0]
    match = re.search(rf"CONSTRAINT ck_{table}_{column} CHECK \(([^)]*)\)", create)
    assert match, f"no CHECK ck_{table}_{column} in the migrated schema: {create}"
    return _values(match.group(1))


def test_every_check_constraint_is_generated_from_a_literal() -> None:
    checks = _model_checks()
    assert set(checks) == set(ENUMERATED)
    for key, literal in ENUMERATED.items():
        assert checks[key] == set(get_args(literal)), key


@pytest.mark.parametrize(("table", "column"), sorted(ENUMERATED))
def test_migrated_schema_allows_exactly_the_literal(db_url: str, table: str, column: str) -> None:
    assert _schema_check(db_url, table, column) == set(get_args(ENUMERATED[(table, column)]))
