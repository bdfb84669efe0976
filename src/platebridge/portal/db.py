"""Async engine and sessions. SQLite gets WAL, foreign keys, a busy timeout and ``BEGIN
IMMEDIATE`` for write transactions (so concurrent writers queue instead of failing)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Executable, Row, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

SQLITE_BUSY_TIMEOUT_MS = 30_000
_WRITE = "platebridge_write"


def _sqlite_setup(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself (see _on_begin) instead of the driver's implicit one.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def make_engine(url: str) -> AsyncEngine:
    # Pool sizes: connections beyond ``pool_size`` are closed when returned, so a pool smaller
    # than the usual number of requests in flight opens and closes a connection per request
    # under load (asyncpg: TCP + startup + SSL probe; aiosqlite: a thread). bench/heartbeat.py
    # runs 32 concurrent heartbeats; keep them all pooled.
    if url.startswith("sqlite"):
        engine = create_async_engine(url, pool_size=16, max_overflow=16)
        _sqlite_setup(engine)
        return engine
    return create_async_engine(url, pool_size=32, max_overflow=16, pool_pre_ping=False)


def dialect_insert(session: AsyncSession) -> Any:
    """The session's dialect INSERT construct (the one with ``on_conflict_do_*``)."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert
    return sqlite.insert


class Database:
    """Owns the engine; ``read()`` and ``write()`` give transactional sessions."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.is_sqlite = url.startswith("sqlite")
        self._reader = async_sessionmaker(self.engine, expire_on_commit=False)
        self._writer = async_sessionmaker(
            self.engine.execution_options(**{_WRITE: True}), expire_on_commit=False
        )
        self._autocommit = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self._write_engine = self.engine.execution_options(**{_WRITE: True})
        # SQLite has one writer. Writers of this process queue on this lock instead of in
        # SQLite's busy handler, which sleeps up to 100 ms between retries (p99 of seconds
        # under concurrent heartbeats). Other processes still meet busy_timeout.
        self._sqlite_write_lock = asyncio.Lock()

    @asynccontextmanager
    async def _sqlite_writer(self) -> AsyncIterator[None]:
        if not self.is_sqlite:
            yield
            return
        async with asyncio.timeout(SQLITE_BUSY_TIMEOUT_MS / 1000):
            await self._sqlite_write_lock.acquire()
        try:
            yield
        finally:
            self._sqlite_write_lock.release()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self._reader() as session, session.begin():
            yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """One transaction: committed on success, rolled back on any exception."""
        async with self._sqlite_writer(), self._writer() as session, session.begin():
            yield session

    async def execute_single(
        self, stmt: Executable, params: dict[str, Any] | None = None
    ) -> list[Row[Any]]:
        """Run one Core statement in its own short transaction and return its rows.

        On PostgreSQL it runs in autocommit (one round trip, no BEGIN/COMMIT); on SQLite in an
        immediate write transaction. A connection, not an ORM session: this is the hot path.
        """
        if self.is_sqlite:
            async with self._sqlite_writer(), self._write_engine.begin() as conn:
                return list((await conn.execute(stmt, params)).all())
        async with self._autocommit.connect() as conn:
            return list((await conn.execute(stmt, params)).all())

    async def dispose(self) -> None:
        await self.engine.dispose()
