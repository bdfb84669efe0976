"""The admin-change trail: rows written in the caller's transaction, scoped to one company."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from platebridge.portal.db import make_engine
from platebridge.portal.models import Company, User, utcnow
from platebridge.portal.services.changes import (
    OPERATOR,
    change_dict,
    list_changes,
    record_change,
)
from platebridge.portal.settings import normalize_database_url


async def test_changes_are_recorded_per_company_newest_first(db_url: str) -> None:
    engine = make_engine(normalize_database_url(db_url))
    try:
        async with async_sessionmaker(engine, expire_on_commit=False)() as session:
            await _scenario(session)
    finally:
        await engine.dispose()


async def _scenario(db_session: AsyncSession) -> None:
    tag = uuid.uuid4().hex[:8]
    a = Company(name=f"Acme {tag}", created_at=utcnow())
    b = Company(name=f"Other {tag}", created_at=utcnow())
    db_session.add_all([a, b])
    await db_session.flush()
    admin = User(
        company_id=a.id,
        email=f"boss-{tag}@acme.test",
        password_hash="x",
        role="admin",
        created_at=utcnow(),
    )
    db_session.add(admin)
    await db_session.flush()
    record_change(
        db_session,
        actor=None,
        company_id=a.id,
        action="company.create",
        object_type="company",
        object_id=str(a.id),
    )
    record_change(
        db_session,
        actor=admin,
        company_id=a.id,
        action="site.rename",
        object_type="site",
        object_id="s1",
        detail={"name": "North"},
    )
    record_change(
        db_session,
        actor=None,
        company_id=b.id,
        action="company.create",
        object_type="company",
        object_id=str(b.id),
    )
    await db_session.commit()

    rows = [change_dict(r) for r in await list_changes(db_session, a.id)]
    assert [r["action"] for r in rows] == ["site.rename", "company.create"]
    assert rows[0]["actor"] == f"boss-{tag}@acme.test" and rows[0]["detail"] == {"name": "North"}
    assert rows[1]["actor"] == OPERATOR
    assert [change_dict(r)["action"] for r in await list_changes(db_session, b.id)] == [
        "company.create"
    ]
