"""The user lifecycle: invite, list, change role, disable, enable, delete, reset password (the
invitation's link flow), accept a link, change one's own password.

Plain values in (sessions, company ids, users, tokens), :class:`ApiError` out. Every change adds
its :func:`record_change` row in the caller's transaction (``actor`` None: the CLI operator).
Invitation and reset links are single-use tokens stored as SHA-256 (:class:`UserLink`); the
token is returned once to the caller, who mails it or shows it once, and is never recorded.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, get_args

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from platebridge.portal.errors import ApiError
from platebridge.portal.models import LinkPurpose, Role, Session, User, UserLink, utcnow
from platebridge.portal.security import (
    hash_password,
    new_session_token,
    token_hash,
    verify_password,
)
from platebridge.portal.services.auth import LoginResult, normalize_email
from platebridge.portal.services.changes import record_change
from platebridge.portal.throttle import Throttle

ROLES: tuple[Role, ...] = get_args(Role)
PASSWORD_MIN = 8
PASSWORD_MAX = 1024
#: ``password_hash`` of an invited user who has not chosen a password (verifies nothing).
NO_PASSWORD = ""
UserStatus = Literal["active", "invited", "disabled"]
#: The accept page; the token rides in the query (``token=`` is redacted from every log).
LINK_PATH = "/invite"


@dataclass(frozen=True, slots=True)
class IssuedLink:
    """A new invitation or reset link: ``token`` is shown or mailed once, then only its hash
    exists."""

    user: User
    purpose: LinkPurpose
    token: str
    expires_at: datetime


def status_of(user: User) -> UserStatus:
    if user.disabled_at is not None:
        return "disabled"
    if user.password_hash == NO_PASSWORD:
        return "invited"
    return "active"


def user_dict(user: User) -> dict[str, Any]:
    """What the API and the CLI show of a user (never a hash)."""
    return {
        "id": str(user.id),
        "email": user.email,
        "role": user.role,
        "status": status_of(user),
        "company_id": str(user.company_id),
        "created_at": user.created_at.isoformat(),
        "disabled_at": user.disabled_at.isoformat() if user.disabled_at else None,
        "password_changed_at": (
            user.password_changed_at.isoformat() if user.password_changed_at else None
        ),
    }


def link_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}{LINK_PATH}?token={token}"


def check_password(password: str) -> None:
    """The project's password rule: 8 to 1,024 characters."""
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise ApiError(
            422,
            "invalid_password",
            f"the password must be {PASSWORD_MIN} to {PASSWORD_MAX} characters",
        )


def _printable(text: str) -> bool:
    return text.isprintable() and not any(c.isspace() for c in text)


def check_email(email: str) -> str:
    email = normalize_email(email)
    local, _, domain = email.partition("@")
    if not local or "." not in domain or len(email) > 320 or not _printable(email):
        raise ApiError(422, "invalid_email", "not a valid e-mail address")
    return email


def check_role(role: str) -> Role:
    for known in ROLES:
        if role == known:
            return known
    raise ApiError(422, "invalid_role", f"role must be one of {', '.join(ROLES)}")


def _not_found() -> ApiError:
    return ApiError(404, "not_found", "user not found")


async def list_users(session: AsyncSession, company_id: uuid.UUID) -> list[User]:
    stmt = select(User).where(User.company_id == company_id).order_by(User.email)
    return list((await session.scalars(stmt)).all())


async def get_user(
    session: AsyncSession, company_id: uuid.UUID | None, ref: str, *, by_email: bool = False
) -> User:
    """A user by id (``by_email``: or e-mail, for the CLI), within ``company_id`` unless None
    (the operator's CLI). Another company's user is the same 404 as one that does not exist."""
    stmt = select(User)
    if company_id is not None:
        stmt = stmt.where(User.company_id == company_id)
    try:
        user = await session.scalar(stmt.where(User.id == uuid.UUID(ref)))
    except ValueError:
        if not by_email or not _printable(ref):
            raise _not_found() from None
        user = await session.scalar(stmt.where(User.email == normalize_email(ref)))
    if user is None:
        raise _not_found()
    return user


async def _revoke_sessions(
    session: AsyncSession, user_id: uuid.UUID, keep: str | None = None
) -> None:
    stmt = update(Session).where(Session.user_id == user_id, Session.revoked_at.is_(None))
    if keep is not None:
        stmt = stmt.where(Session.token_hash != token_hash(keep))
    await session.execute(
        stmt.values(revoked_at=utcnow()).execution_options(synchronize_session=False)
    )


async def _void_links(session: AsyncSession, user_id: uuid.UUID) -> None:
    await session.execute(
        update(UserLink)
        .where(UserLink.user_id == user_id, UserLink.used_at.is_(None))
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )


async def _keep_an_admin(session: AsyncSession, user: User, doing: str) -> None:
    """409 when ``doing`` to ``user`` would leave the company without an active admin."""
    if user.role != "admin" or status_of(user) != "active":
        return
    others = (
        select(User.id)
        .where(
            User.company_id == user.company_id,
            User.role == "admin",
            User.id != user.id,
            User.disabled_at.is_(None),
            User.password_hash != NO_PASSWORD,
        )
        .with_for_update()
    )
    if not (await session.scalars(others)).first():
        raise ApiError(
            409,
            "last_admin",
            f"cannot {doing} {user.email}: the last active admin of the company "
            "(make another user admin first)",
        )


def _record(
    session: AsyncSession, actor: User | None, user: User, action: str, **detail: Any
) -> None:
    record_change(
        session,
        actor=actor,
        company_id=user.company_id,
        action=f"user.{action}",
        object_type="user",
        object_id=str(user.id),
        detail={"email": user.email, **detail},
    )


async def _issue_link(
    session: AsyncSession, user: User, purpose: LinkPurpose, ttl: int
) -> IssuedLink:
    await _void_links(session, user.id)  # one live link per user: the newest
    token = new_session_token()
    now = utcnow()
    expires = now + timedelta(seconds=ttl)
    session.add(
        UserLink(
            token_hash=token_hash(token),
            user_id=user.id,
            purpose=purpose,
            created_at=now,
            expires_at=expires,
        )
    )
    await session.flush()
    return IssuedLink(user=user, purpose=purpose, token=token, expires_at=expires)


async def invite(
    session: AsyncSession,
    company_id: uuid.UUID,
    email: str,
    role: str,
    *,
    actor: User | None,
    ttl: int,
) -> IssuedLink:
    """A new user without a password and their invitation link. Inviting again a user who has
    not accepted yet issues a new link (the old one stops working) with the role given."""
    email, checked_role = check_email(email), check_role(role)
    existing = await session.scalar(select(User).where(User.email == email))
    if existing is not None:
        if existing.company_id != company_id or status_of(existing) != "invited":
            # The same answer whichever company holds the address.
            raise ApiError(409, "user_exists", "a user with this e-mail address already exists")
        existing.role = checked_role
        _record(session, actor, existing, "reinvite", role=checked_role)
        return await _issue_link(session, existing, "invite", ttl)
    user = User(
        id=uuid.uuid4(),
        company_id=company_id,
        email=email,
        password_hash=NO_PASSWORD,
        role=checked_role,
        created_at=utcnow(),
    )
    session.add(user)
    await session.flush()
    _record(session, actor, user, "invite", role=checked_role)
    return await _issue_link(session, user, "invite", ttl)


async def issue_reset(
    session: AsyncSession, user: User, *, actor: User | None, ttl: int
) -> IssuedLink:
    """A password-reset link. The current password and sessions keep working until the link is
    used (then every session ends); an invited user gets a new invitation instead."""
    if user.disabled_at is not None:
        raise ApiError(409, "user_disabled", "enable the user before resetting their password")
    purpose: LinkPurpose = "invite" if status_of(user) == "invited" else "reset"
    _record(session, actor, user, "reset_password")
    return await _issue_link(session, user, purpose, ttl)


async def set_role(session: AsyncSession, user: User, role: str, *, actor: User | None) -> User:
    new = check_role(role)
    if new == user.role:
        return user
    if new != "admin":
        await _keep_an_admin(session, user, "demote")
    old, user.role = user.role, new
    _record(session, actor, user, "role", old=old, new=new)
    await session.flush()
    return user


async def disable(session: AsyncSession, user: User, *, actor: User | None) -> User:
    """Disable at once: every session revoked, links voided; stream tokens are refused by the
    portal from the next authorisation on (docs/portal.md, Users lifecycle)."""
    if user.disabled_at is not None:
        return user
    await _keep_an_admin(session, user, "disable")
    user.disabled_at = utcnow()
    await _revoke_sessions(session, user.id)
    await _void_links(session, user.id)
    _record(session, actor, user, "disable")
    await session.flush()
    return user


async def enable(session: AsyncSession, user: User, *, actor: User | None) -> User:
    if user.disabled_at is None:
        return user
    user.disabled_at = None
    _record(session, actor, user, "enable")
    await session.flush()
    return user


async def delete(session: AsyncSession, user: User, *, actor: User | None) -> None:
    """Delete the user (sessions and links go with the row; the trails keep their e-mail)."""
    await _keep_an_admin(session, user, "delete")
    _record(session, actor, user, "delete", role=user.role)
    await session.delete(user)
    await session.flush()


async def set_password(
    session: AsyncSession, user: User, password: str, *, actor: User | None
) -> None:
    """Set a password (CLI ``user create`` / ``update --password``): every session ends."""
    check_password(password)
    user.password_hash = await asyncio.to_thread(hash_password, password)
    user.password_changed_at = utcnow()
    await _revoke_sessions(session, user.id)
    await _void_links(session, user.id)
    _record(session, actor, user, "password")
    await session.flush()


async def live_link(session: AsyncSession, token: str) -> tuple[UserLink, User]:
    """The unused, unexpired link of ``token`` and its (enabled) user; 404 otherwise (one
    answer for unknown, used, expired and disabled)."""
    invalid = ApiError(404, "invalid_link", "this link is invalid, used or expired")
    if not token or len(token) > 128:
        raise invalid
    row = (
        await session.execute(
            select(UserLink, User)
            .join(User, User.id == UserLink.user_id)
            .where(
                UserLink.token_hash == token_hash(token),
                UserLink.used_at.is_(None),
                UserLink.expires_at > utcnow(),
                User.disabled_at.is_(None),
            )
        )
    ).first()
    if row is None:
        raise invalid
    return row[0], row[1]


async def accept_link(
    session: AsyncSession, token: str, password: str, session_ttl: int
) -> LoginResult:
    """Use a link: set the password, end every other session and open a new one."""
    link, user = await live_link(session, token)
    check_password(password)
    user.password_hash = await asyncio.to_thread(hash_password, password)
    user.password_changed_at = now = utcnow()
    link.used_at = now
    await _void_links(session, user.id)
    await _revoke_sessions(session, user.id)
    _record(session, user, user, "accept_invite" if link.purpose == "invite" else "reset_done")
    login = new_session_token()
    expires = now + timedelta(seconds=session_ttl)
    session.add(
        Session(token_hash=token_hash(login), user_id=user.id, created_at=now, expires_at=expires)
    )
    await session.flush()
    return LoginResult(token=login, expires_at=expires, user=user)


async def change_own_password(
    session: AsyncSession,
    user: User,
    current: str,
    new: str,
    *,
    keep_session: str | None,
    throttle: Throttle | None = None,
    source: str | None = None,
) -> None:
    """The signed-in user's own change: the current password is required (wrong ones count as
    failed sign-ins of the account); every other session of the user ends."""
    if throttle is not None:
        throttle.check_login(user.email, source)
    ok = await asyncio.to_thread(verify_password, user.password_hash or None, current)
    if not ok:
        if throttle is not None:
            throttle.login_failed(user.email, source)
        raise ApiError(403, "wrong_password", "the current password is wrong")
    check_password(new)
    fresh = await session.get(User, user.id)
    if fresh is None:
        raise _not_found()
    fresh.password_hash = await asyncio.to_thread(hash_password, new)
    fresh.password_changed_at = utcnow()
    await _revoke_sessions(session, fresh.id, keep=keep_session)
    _record(session, fresh, fresh, "password")
    await session.flush()
