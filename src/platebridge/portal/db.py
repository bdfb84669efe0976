"""Async engine and sessions. SQLite gets WAL, foreign keys, a busy timeout and ``BEGIN
IMMEDIATE`` for write transactions (so concurrent writers queue instead of failing)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, cast

import asyncpg
from sqlalchemy import ColumnDefault, Executable, Row, Table, event, insert, text
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
    # runs 32 concurrent heartbeats (unchanged ones no longer use this pool on PostgreSQL).
    if url.startswith("sqlite"):
        engine = create_async_engine(url, pool_size=16, max_overflow=16)
        _sqlite_setup(engine)
        return engine
    # PostgreSQL: 20 (+16) here plus the heartbeat fast path's own 4 (``Database.pg_fetch``)
    # keeps a portal at <= 40 server connections (docs/deploy.md, "Several portal processes":
    # N processes need N x 40 of the server's max_connections).
    return create_async_engine(url, pool_size=20, max_overflow=16, pool_pre_ping=False)


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
        self._pg_pool: asyncpg.Pool | None = None
        self._pg_pool_lock = asyncio.Lock()
        self._sqlite_sync: sqlite3.Connection | None = None
        self._coalescers: dict[str, _Coalescer] = {}

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

    # --- the driver directly, for the heartbeat's one-statement fast path -------------------
    #
    # SQLAlchemy's execution context (pool checkout events, compiled-cache lookup, result
    # wrapping) cost more CPU than the statement itself (bench/heartbeat.py profile). These
    # run one hand-written statement on the driver; everything else goes through SQLAlchemy.

    async def pg_fetch(self, sql: str, *args: Any) -> list[Any]:
        """PostgreSQL: run ``sql`` (``$n`` parameters) in autocommit on a small asyncpg pool of
        its own (prepared statements cached per connection) and return its rows."""
        pool = self._pg_pool or await self._open_pg_pool()
        rows: list[Any] = await pool.fetch(sql, *args)
        return rows

    async def _open_pg_pool(self) -> asyncpg.Pool:
        async with self._pg_pool_lock:
            if self._pg_pool is None:
                cargs, cparams = self.engine.dialect.create_connect_args(self.engine.url)
                cparams["server_settings"] = {
                    **cparams.get("server_settings", {}),
                    **FAST_POOL_PLANNER_SETTINGS,
                }
                self._pg_pool = await asyncpg.create_pool(
                    *cargs, min_size=1, max_size=PG_FAST_POOL_SIZE, reset=_no_reset, **cparams
                )
            return self._pg_pool

    async def pg_coalesced(self, sql: str, row: tuple[Any, ...]) -> Any | None:
        """PostgreSQL: one row of a statement that concurrent callers share.

        ``sql`` takes one array parameter per field of ``row`` plus a last ``int[]`` of
        ordinals, and returns rows whose first column is the ordinal of the caller they
        answer (at most one each). Callers arriving while the statement's previous runs are
        in flight are sent together as one statement (see :class:`_Coalescer`); each gets
        its own row, or None when the statement returned none for it."""
        coalescer = self._coalescers.get(sql)
        if coalescer is None:
            coalescer = self._coalescers[sql] = _Coalescer(self, sql)
        return await coalescer.submit(row)

    def sqlite_try_write(self, sql: str, params: tuple[Any, ...]) -> list[Any] | None:
        """SQLite: run one autocommitted write statement synchronously on the event loop, or
        return None when it cannot run *now* without waiting (a writer of this process holds
        the write lock, or another process holds SQLite's: ``busy_timeout`` 0), in which case
        the caller takes the queued path. One indexed UPDATE in WAL mode with
        ``synchronous=NORMAL`` takes tens of microseconds: cheaper than aiosqlite's three
        thread hops (BEGIN IMMEDIATE, UPDATE, COMMIT)."""
        if self._sqlite_write_lock.locked():
            return None
        conn = self._sqlite_sync or self._open_sqlite_sync()
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                return None
            raise

    def _open_sqlite_sync(self) -> sqlite3.Connection:
        path = self.engine.url.database or ":memory:"
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=0")
        conn.execute("PRAGMA synchronous=NORMAL")
        self._sqlite_sync = conn
        return conn

    def bind_processor(self, column: Any) -> Callable[[Any], Any]:
        """How SQLAlchemy would convert a Python value for ``column`` on this database."""
        proc = column.type.bind_processor(self.engine.dialect)
        return proc if proc is not None else _identity

    async def dispose(self) -> None:
        if self._pg_pool is not None:
            await self._pg_pool.close()
            self._pg_pool = None
        if self._sqlite_sync is not None:
            self._sqlite_sync.close()
            self._sqlite_sync = None
        await self.engine.dispose()


#: Rows per statement of :func:`insert_rows`.
INSERT_CHUNK = 5000


async def insert_rows(session: AsyncSession, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys) into ``table`` in ``session``'s transaction.

    PostgreSQL: ``INSERT … SELECT * FROM unnest($1::type[], …)``, one array per column, so
    thousands of rows are one statement and one round trip (2,800 alert incidents: 60-90 ms
    instead of 105-175 ms as an executemany); values go through the columns' own bind
    processors, as SQLAlchemy would send them, and a column left out gets its Python-side
    default (as with an executemany); a failure is the driver's own exception (asyncpg's, not
    wrapped by SQLAlchemy) and leaves the transaction to roll back. SQLite: an executemany.
    """
    if not rows:
        return
    conn = await session.connection()
    dialect = conn.dialect
    if dialect.name != "postgresql":
        for i in range(0, len(rows), INSERT_CHUNK):
            await conn.execute(insert(table), rows[i : i + INSERT_CHUNK])
        return
    driver = (await conn.get_raw_connection()).driver_connection
    assert driver is not None
    if not driver.is_in_transaction():  # SQLAlchemy's adapter begins at its first statement
        await conn.execute(text("SELECT 1"))
        assert driver.is_in_transaction()
    rows = _with_defaults(table, rows)
    names = list(rows[0])
    columns = [table.c[name] for name in names]
    quote = dialect.identifier_preparer.quote
    arrays = ", ".join(
        f"${n}::{column.type.compile(dialect)}[]" for n, column in enumerate(columns, 1)
    )
    # Table, column and type names come from the table's definition, never from a request.
    into = f"{quote(table.name)} ({', '.join(quote(name) for name in names)})"
    sql = f"INSERT INTO {into} SELECT * FROM unnest({arrays})"  # noqa: S608
    processors = [column.type.bind_processor(dialect) or _identity for column in columns]
    for i in range(0, len(rows), INSERT_CHUNK):
        chunk = rows[i : i + INSERT_CHUNK]
        values = [
            [proc(row[name]) for row in chunk] for name, proc in zip(names, processors, strict=True)
        ]
        await driver.execute(sql, *values)


def _with_defaults(table: Table, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` with every left-out column that has a Python-side default filled in."""
    defaults = [
        column
        for column in table.columns
        if column.name not in rows[0] and isinstance(column.default, ColumnDefault)
    ]
    if not defaults:
        return rows
    filled = []
    for row in rows:
        extra = {}
        for column in defaults:
            default = cast(ColumnDefault, column.default)
            extra[column.name] = default.arg(None) if default.is_callable else default.arg
        filled.append({**row, **extra})
    return filled


#: The heartbeat fast path's own asyncpg connections (``Database.pg_fetch``).
PG_FAST_POOL_SIZE = 4
#: Those connections run only index lookups (the coalesced heartbeat UPDATE joins its arrays
#: to ``api_keys`` by the unique key hash and to ``pods`` by primary key). With statistics
#: that say a table is tiny (a database just restored, seeded or not yet analysed) the planner
#: chose a sequential scan of ``api_keys`` per batch row: 21 ms instead of 0.4 ms for 16
#: heartbeats. Scans and hash/merge joins are priced out on this pool only.
FAST_POOL_PLANNER_SETTINGS = {
    "enable_seqscan": "off",
    "enable_hashjoin": "off",
    "enable_mergejoin": "off",
}
#: Runs of one coalesced statement in flight at once; callers arriving meanwhile queue and
#: go together in the next run. Two keep the connection busy while the next batch forms.
COALESCE_IN_FLIGHT = 2
#: At most this many callers in one run (bounds the arrays and the statement's time).
COALESCE_MAX_BATCH = 256


class _Coalescer:
    """Group commit for one statement shape (the unchanged heartbeat's timestamp UPDATE).

    At 2,000 heartbeats/s one statement per heartbeat spent as much CPU on the driver and the
    server (a round trip, a pool checkout, an executor per statement) as the rest of the
    request. Here a caller queues its row; while fewer than ``COALESCE_IN_FLIGHT`` runs are
    in flight a run starts on the next loop turn with every queued row, otherwise the rows
    wait for a run to finish. Idle, a caller waits one loop turn; busy, at most one run more
    — and the busier the process, the bigger (and cheaper per row) the runs.
    """

    def __init__(self, db: Database, sql: str) -> None:
        self.db, self.sql = db, sql
        self.pending: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] = []
        self.in_flight = 0
        self.scheduled = False
        self.tasks: set[asyncio.Task[None]] = set()

    def submit(self, row: tuple[Any, ...]) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self.pending.append((row, future))
        self._schedule(loop)
        return future

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.pending and not self.scheduled and self.in_flight < COALESCE_IN_FLIGHT:
            self.scheduled = True
            loop.call_soon(self._start)

    def _start(self) -> None:
        self.scheduled = False
        batch = [item for item in self.pending[:COALESCE_MAX_BATCH] if not item[1].done()]
        del self.pending[:COALESCE_MAX_BATCH]
        if batch:
            self.in_flight += 1
            task = asyncio.ensure_future(self._run(batch))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        self._schedule(asyncio.get_running_loop())

    async def _run(self, batch: list[tuple[tuple[Any, ...], asyncio.Future[Any]]]) -> None:
        try:
            columns = [list(c) for c in zip(*(row for row, _ in batch), strict=True)]
            rows = await self.db.pg_fetch(self.sql, *columns, list(range(len(batch))))
        except BaseException as exc:
            for _, future in batch:
                if not future.done():
                    if isinstance(exc, asyncio.CancelledError):
                        future.cancel()
                    else:
                        future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
        else:
            answers = {row[0]: row for row in rows}
            for n, (_, future) in enumerate(batch):
                if not future.done():
                    future.set_result(answers.get(n))
        finally:
            self.in_flight -= 1
            self._schedule(asyncio.get_running_loop())


async def _no_reset(_conn: asyncpg.Connection) -> None:
    """The fast-path pool runs single autocommitted statements: nothing to reset (asyncpg's
    default reset is a round trip per release)."""


def _identity(value: Any) -> Any:
    return value
