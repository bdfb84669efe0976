"""Database pool use: connections checked out now and checkouts so far (pool events)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from platebridge.portal.metrics import instruments as m

_MARK = "platebridge_metrics_out"


def watch_pool(engine: AsyncEngine) -> None:
    """Follow ``engine``'s pool from now on (connections checked out before are not seen)."""

    def checkout(_dbapi: Any, record: Any, _proxy: Any) -> None:
        record.info[_MARK] = True
        m.DB_CONNECTIONS_IN_USE.inc()
        m.DB_CHECKOUTS.inc()

    def checkin(_dbapi: Any, record: Any) -> None:
        if record.info.pop(_MARK, False):  # only what was counted out is counted back
            m.DB_CONNECTIONS_IN_USE.dec()

    event.listen(engine.sync_engine, "checkout", checkout)
    event.listen(engine.sync_engine, "checkin", checkin)


def pool_size(engine: AsyncEngine) -> int | None:
    """The pool's configured size (None: a pool without one, e.g. SQLite's)."""
    size = getattr(engine.sync_engine.pool, "size", None)
    return int(size()) if callable(size) else None
