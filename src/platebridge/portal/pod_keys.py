"""The one lookup of a POD's ``pbk_`` key, shared by the heartbeat and the tunnel endpoint.

It lives beside the models rather than in ``services`` so that the tunnel package (which must
not import services) and the heartbeat service authenticate a POD the same way.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from platebridge.portal.errors import ApiError
from platebridge.portal.models import ApiKey


async def active_key(session: AsyncSession, key_hash: bytes) -> ApiKey:
    """The unrevoked key with this hash, or 401 (never saying which part was wrong)."""
    key = (
        await session.execute(select(ApiKey).where(ApiKey.key_hash == key_hash))
    ).scalar_one_or_none()
    if key is None or key.revoked_at is not None:
        raise ApiError(401, "invalid_api_key", "API key is unknown or revoked")
    return key
