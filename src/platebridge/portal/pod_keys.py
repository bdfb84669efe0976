"""A POD's ``pbk_`` key: what a request presented, the one lookup, the refused-key throttle.

Shared by the heartbeat, the enroll route and the tunnel endpoint. It lives beside the models
rather than in ``services`` so that the tunnel package (which must not import services) and
the heartbeat service authenticate a POD the same way. Plain values only: the routes read the
``Authorization`` header and the source address and pass strings.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from platebridge.portal.errors import ApiError
from platebridge.portal.models import ApiKey
from platebridge.portal.security import looks_like_api_key, token_hash

T = TypeVar("T")


class KeyThrottle(Protocol):
    """The part of ``throttle.Throttle`` that counts refused POD keys per source address."""

    def check_heartbeat(self, source: str | None) -> None: ...

    def heartbeat_failed(self, source: str | None) -> None: ...


def presented_key_hash(key: str | None) -> bytes:
    """The hash of the bearer key a request presented (``credentials.bearer_token``): 401
    ``missing_api_key`` without one, 401 ``invalid_api_key`` when it is not key-shaped."""
    if key is None:
        raise ApiError(
            401,
            "missing_api_key",
            "Authorization: Bearer pbk_… header is required",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not looks_like_api_key(key):
        raise ApiError(401, "invalid_api_key", "API key is unknown or revoked")
    return token_hash(key)


async def key_throttled(
    throttle: KeyThrottle, source: str | None, handle: Callable[[], Awaitable[T]]
) -> T:
    """Run ``handle`` (everything a key-authenticated request does) under the per-source
    budget of refused keys: a throttled address is refused *before* its key is looked at (it
    learns nothing about any key), and every ``invalid_api_key`` counts toward the budget."""
    throttle.check_heartbeat(source)
    try:
        return await handle()
    except ApiError as exc:
        if exc.code == "invalid_api_key":
            throttle.heartbeat_failed(source)
        raise


async def active_key(session: AsyncSession, key_hash: bytes) -> ApiKey:
    """The unrevoked key with this hash, or 401 (never saying which part was wrong)."""
    key = (
        await session.execute(select(ApiKey).where(ApiKey.key_hash == key_hash))
    ).scalar_one_or_none()
    if key is None or key.revoked_at is not None:
        raise ApiError(401, "invalid_api_key", "API key is unknown or revoked")
    return key
