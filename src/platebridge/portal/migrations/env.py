"""Alembic environment: async engine (asyncpg / aiosqlite) driven through ``run_sync``."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from platebridge.portal.db import make_engine
from platebridge.portal.schema import metadata

target_metadata = metadata


#: pg_advisory_lock key: portals starting at once on PostgreSQL migrate one after another.
_PG_LOCK_KEY = 0x706C617465  # "plate"


def _run(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_lock({_PG_LOCK_KEY})")
        connection.commit()
    try:
        _migrate(connection)
    finally:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_unlock({_PG_LOCK_KEY})")
            connection.commit()


def _migrate(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(url: str) -> None:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.run_sync(_run)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL configured for migrations")
    asyncio.run(_run_async(url))


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) migrations are not supported")
run_migrations_online()
