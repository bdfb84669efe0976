"""``db.insert_rows``: many rows in one statement (PostgreSQL: ``unnest`` arrays; SQLite:
executemany), through the columns' own types, inside the caller's transaction."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, cast

import pytest
from sqlalchemy import Table, select

from platebridge.portal.db import INSERT_CHUNK, insert_rows
from platebridge.portal.models import Community, Company
from tests.support.portal import in_session

COMPANIES = cast(Table, Company.__table__)
COMMUNITIES = cast(Table, Community.__table__)


def _companies(n: int, tag: str) -> list[dict[str, Any]]:
    base = datetime(2026, 12, 4, 3, 0, tzinfo=UTC)
    return [
        {"id": uuid.uuid4(), "name": f"bulk {tag} {i} 'quoted' ünïcode", "created_at": base}
        for i in range(n)
    ]


def test_rows_land_as_given_with_their_types(db_url: str) -> None:
    rows = _companies(3, uuid.uuid4().hex[:8])
    # an aware datetime in another zone is stored as the same instant
    rows[1]["created_at"] = datetime(2026, 12, 4, 5, 0, tzinfo=timezone(timedelta(hours=1)))

    async def go(s: Any) -> list[Company]:
        await insert_rows(s, COMPANIES, rows)
        ids = [r["id"] for r in rows]
        return list((await s.execute(select(Company).where(Company.id.in_(ids)))).scalars())

    found = {c.id: c for c in in_session_result(db_url, go)}
    assert set(found) == {r["id"] for r in rows}
    for row in rows:
        company = found[row["id"]]
        assert company.name == row["name"]
        assert company.created_at == row["created_at"]
        assert company.created_at.tzinfo is not None


def test_more_rows_than_one_statement_takes(db_url: str) -> None:
    company = _companies(1, uuid.uuid4().hex[:8])
    rows = [
        {
            "id": uuid.uuid4(),
            "company_id": company[0]["id"],
            "name": f"community {i}",
            "created_at": company[0]["created_at"],
        }
        for i in range(INSERT_CHUNK + 7)
    ]

    async def go(s: Any) -> int:
        await insert_rows(s, COMPANIES, company)
        await insert_rows(s, COMMUNITIES, rows)
        await insert_rows(s, COMMUNITIES, [])  # nothing to do
        found = await s.execute(
            select(Community.id).where(Community.company_id == company[0]["id"])
        )
        return len(found.all())

    assert in_session_result(db_url, go) == INSERT_CHUNK + 7


def test_a_left_out_column_gets_its_python_side_default(db_url: str) -> None:
    """``id`` defaults to a new UUID per row (a callable default)."""
    rows = _companies(2, uuid.uuid4().hex[:8])
    for row in rows:
        del row["id"]

    async def go(s: Any) -> list[uuid.UUID]:
        await insert_rows(s, COMPANIES, rows)
        names = [r["name"] for r in rows]
        return list((await s.execute(select(Company.id).where(Company.name.in_(names)))).scalars())

    ids = in_session_result(db_url, go)
    assert len(set(ids)) == 2 and all(isinstance(i, uuid.UUID) for i in ids)


def test_a_failing_insert_rolls_back_with_the_transaction(db_url: str) -> None:
    tag = uuid.uuid4().hex[:8]
    rows = _companies(2, tag)
    rows[1]["name"] = rows[0]["name"]  # the unique name clashes

    async def go(s: Any) -> None:
        # the first statement of the transaction: it must not run in autocommit
        await insert_rows(s, COMPANIES, rows[:1])
        await insert_rows(s, COMPANIES, rows[1:])

    with pytest.raises(Exception, match=r"(?i)unique"):
        in_session_result(db_url, go)

    async def count(s: Any) -> int:
        found = await s.execute(select(Company.id).where(Company.name == rows[0]["name"]))
        return len(found.all())

    assert in_session_result(db_url, count) == 0


def in_session_result(db_url: str, fn: Any) -> Any:
    return asyncio.run(in_session(db_url, fn))
