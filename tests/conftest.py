"""Top-level fixtures: the database backends every portal test runs against.

``db_url`` is parametrised over SQLite (a temp file) and PostgreSQL (a fresh database on
127.0.0.1:5432, created for the session and dropped at the end). Without a reachable
PostgreSQL the PostgreSQL half is skipped with a loud warning — or fails when ``CI=true``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.portal import (
    create_pg_database,
    drop_pg_database,
    migrate,
    new_sqlite_url,
    pg_reachable,
)

_pg_problem: list[str | None] = []


def require_postgres() -> None:
    """Skip (or fail on CI) when PostgreSQL is not reachable."""
    if not _pg_problem:
        _pg_problem.append(pg_reachable())
    problem = _pg_problem[0]
    if problem is None:
        return
    message = f"PostgreSQL on 127.0.0.1:5432 is unreachable ({problem})"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message}: CI must run the PostgreSQL tests", pytrace=False)
    warnings.warn(f"!!! SKIPPING POSTGRESQL TESTS: {message}", stacklevel=1)
    pytest.skip(f"!!! {message}")


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A migrated, empty portal database for the whole session, per backend."""
    if request.param == "sqlite":
        url = new_sqlite_url(Path(tmp_path_factory.mktemp("sqlite")))
        migrate(url)
        yield url
        return
    require_postgres()
    url = create_pg_database()
    try:
        migrate(url)
        yield url
    finally:
        drop_pg_database(url)
