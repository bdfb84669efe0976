"""The alert tests' own database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import require_postgres
from tests.support.portal import (
    create_pg_database,
    drop_pg_database,
    is_postgres,
    migrate,
    new_sqlite_url,
)


@pytest.fixture(scope="module")
def alert_db(db_url: str) -> Iterator[str]:
    """A migrated database of ``db_url``'s backend for one test module alone: an evaluation
    pass or a delivery round looks at every row it finds, and the shared test database holds
    other tests' tenants."""
    if is_postgres(db_url):
        require_postgres()
        url = create_pg_database("pb_alerts")
    else:
        url = new_sqlite_url()
    migrate(url)
    try:
        yield url
    finally:
        if is_postgres(url):
            drop_pg_database(url)
