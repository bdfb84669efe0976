"""The trail of admin changes: every lifecycle action (create, rename, move, disable, delete, …)
made from the web pages, the JSON API or the CLI writes one :class:`AdminChange` row here.

Callers add the row in the same transaction as the change itself, so a change is never without
its record and a record never without its change. ``detail`` must not carry secrets: keys,
passwords, invite or share links are named ("key rotated"), never written.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from platebridge.portal.models import AdminChange, User, utcnow

#: The actor recorded for changes made by a platform operator through the CLI.
OPERATOR = "operator"
MAX_LIST = 1000


def record_change(
    session: AsyncSession,
    *,
    actor: User | None,
    company_id: uuid.UUID | None,
    action: str,
    object_type: str,
    object_id: str,
    detail: Mapping[str, Any] | None = None,
) -> AdminChange:
    """Add one change to ``session`` (the caller commits). ``actor`` None: the CLI operator."""
    row = AdminChange(
        company_id=company_id,
        at=utcnow(),
        actor_user_id=actor.id if actor is not None else None,
        actor=actor.email if actor is not None else OPERATOR,
        action=action[:64],
        object_type=object_type[:32],
        object_id=object_id[:200],
        detail=json.dumps(dict(detail or {}), sort_keys=True, default=str),
    )
    session.add(row)
    return row


async def list_changes(
    session: AsyncSession, company_id: uuid.UUID, limit: int = 200
) -> list[AdminChange]:
    """One company's changes, newest first."""
    stmt = (
        select(AdminChange)
        .where(AdminChange.company_id == company_id)
        .order_by(AdminChange.at.desc())
        .limit(max(1, min(limit, MAX_LIST)))
    )
    return list((await session.scalars(stmt)).all())


def change_dict(row: AdminChange) -> dict[str, Any]:
    return {
        "at": row.at.isoformat(),
        "actor": row.actor,
        "action": row.action,
        "object_type": row.object_type,
        "object_id": row.object_id,
        "detail": json.loads(row.detail or "{}"),
    }
