"""Login sessions: opaque tokens stored hashed, so logout (revocation) is immediate. A disabled
user (``User.disabled_at``) can neither sign in nor use a session opened before."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from platebridge.portal.errors import ApiError
from platebridge.portal.models import Session, User, utcnow
from platebridge.portal.security import new_session_token, token_hash, verify_password
from platebridge.portal.throttle import Throttle


@dataclass(frozen=True, slots=True)
class LoginResult:
    token: str
    expires_at: datetime
    user: User


def normalize_email(email: str) -> str:
    return email.strip().lower()


async def login(
    session: AsyncSession,
    email: str,
    password: str,
    ttl: int,
    *,
    throttle: Throttle | None = None,
    source: str | None = None,
) -> LoginResult:
    """Check the password and open a session. With ``throttle`` (every HTTP caller passes the
    app's), failures are counted per source and per account and answered 429 when too many
    (before the password is even hashed)."""
    account = normalize_email(email)
    if throttle is not None:
        throttle.check_login(account, source)
    user = (await session.execute(select(User).where(User.email == account))).scalar_one_or_none()
    # argon2 is CPU-bound: keep the event loop free. Unknown e-mails cost the same.
    ok = await asyncio.to_thread(verify_password, user.password_hash if user else None, password)
    if user is None or not ok:
        if throttle is not None:
            throttle.login_failed(account, source)
        raise ApiError(401, "invalid_credentials", "e-mail or password is wrong")
    if user.disabled_at is not None:  # told only to someone who knows the password
        raise ApiError(403, "account_disabled", "this account is disabled; ask your company admin")
    if throttle is not None:
        throttle.login_succeeded(account, source)
    token = new_session_token()
    now = utcnow()
    expires = now + timedelta(seconds=ttl)
    session.add(
        Session(token_hash=token_hash(token), user_id=user.id, created_at=now, expires_at=expires)
    )
    return LoginResult(token=token, expires_at=expires, user=user)


async def user_for_token(session: AsyncSession, token: str) -> User | None:
    """The user of a live (unexpired, unrevoked) session token, else None."""
    row = (
        await session.execute(
            select(User)
            .join(Session, Session.user_id == User.id)
            .where(
                Session.token_hash == token_hash(token),
                Session.revoked_at.is_(None),
                Session.expires_at > utcnow(),
                User.disabled_at.is_(None),
            )
        )
    ).scalar_one_or_none()
    return row


async def logout(session: AsyncSession, token: str) -> None:
    await session.execute(
        update(Session)
        .where(Session.token_hash == token_hash(token), Session.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )
