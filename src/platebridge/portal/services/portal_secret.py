"""The portal's own signing key: from settings, or generated once and kept in the database
(so every process and restart agrees without any setup step)."""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from platebridge.portal.db import dialect_insert
from platebridge.portal.models import Setting

SECRET_KEY_NAME = "secret_key"  # noqa: S105 - a settings row name, not a secret


async def ensure_secret_key(session: AsyncSession, configured: str | None) -> str:
    if configured:
        return configured
    existing = await session.scalar(select(Setting.value).where(Setting.key == SECRET_KEY_NAME))
    if existing:
        return existing
    await session.execute(
        dialect_insert(session)(Setting)
        .values(key=SECRET_KEY_NAME, value=secrets.token_urlsafe(48))
        .on_conflict_do_nothing(index_elements=["key"])
    )
    value = await session.scalar(select(Setting.value).where(Setting.key == SECRET_KEY_NAME))
    assert value is not None
    return value
