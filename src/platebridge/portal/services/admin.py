"""Tenant administration used by the CLI (and later by admin pages).

Parent references accept the UUID printed at creation or a unique name. Errors are
:class:`AdminError` with a one-line message that never contains a secret.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, TypeVar, get_args

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from platebridge.core.heartbeat import Slug
from platebridge.portal.models import (
    ApiKey,
    Community,
    Company,
    Pod,
    Role,
    Site,
    User,
    utcnow,
)
from platebridge.portal.security import (
    hash_password,
    key_display_prefix,
    new_api_key,
    new_stream_secret,
    token_hash,
)
from platebridge.portal.services.auth import normalize_email

ROLES: tuple[str, ...] = get_args(Role)
MIN_PASSWORD_LENGTH = 8
_slug = TypeAdapter(Slug)
T = TypeVar("T", Company, Community, Site)


class AdminError(Exception):
    """A refused admin action; ``str(exc)`` is the one-line message."""


@dataclass(frozen=True, slots=True)
class CreatedPod:
    pod: Pod
    site: Site
    api_key: str
    stream_token_secret: str


@dataclass(frozen=True, slots=True)
class IssuedKey:
    key: ApiKey
    api_key: str


def _name(value: str, what: str) -> str:
    value = value.strip()
    if not 1 <= len(value) <= 200:
        raise AdminError(f"{what} name must be 1-200 characters")
    return value


async def resolve(session: AsyncSession, model: type[T], ref: str, what: str, **scope: Any) -> T:
    """Find a company/community/site by UUID or unique name."""
    stmt = select(model).filter_by(**scope)
    try:
        by_id = await session.scalar(stmt.where(model.id == uuid.UUID(ref)))
        if by_id is not None:
            return by_id
    except ValueError:
        pass
    found = list((await session.scalars(stmt.where(model.name == ref.strip()))).all())
    if not found:
        raise AdminError(f"{what} {ref!r} not found")
    if len(found) > 1:
        raise AdminError(f"{what} name {ref!r} is ambiguous; use its id")
    return found[0]


async def create_company(session: AsyncSession, name: str) -> Company:
    name = _name(name, "company")
    if await session.scalar(select(Company.id).where(Company.name == name)):
        raise AdminError(f"company {name!r} already exists")
    company = Company(id=uuid.uuid4(), name=name, created_at=utcnow())
    session.add(company)
    await session.flush()
    return company


async def create_community(session: AsyncSession, company_ref: str, name: str) -> Community:
    company = await resolve(session, Company, company_ref, "company")
    name = _name(name, "community")
    exists = select(Community.id).where(Community.company_id == company.id, Community.name == name)
    if await session.scalar(exists):
        raise AdminError(f"community {name!r} already exists in this company")
    community = Community(id=uuid.uuid4(), company_id=company.id, name=name, created_at=utcnow())
    session.add(community)
    await session.flush()
    return community


async def create_site(session: AsyncSession, community_ref: str, name: str) -> Site:
    community = await resolve(session, Community, community_ref, "community")
    name = _name(name, "site")
    exists = select(Site.id).where(Site.community_id == community.id, Site.name == name)
    if await session.scalar(exists):
        raise AdminError(f"site {name!r} already exists in this community")
    site = Site(
        id=uuid.uuid4(),
        community_id=community.id,
        company_id=community.company_id,
        name=name,
        created_at=utcnow(),
    )
    session.add(site)
    await session.flush()
    return site


async def create_user(
    session: AsyncSession, company_ref: str, email: str, password: str, role: str
) -> User:
    company = await resolve(session, Company, company_ref, "company")
    email = normalize_email(email)
    if "@" not in email or len(email) > 320 or any(ch.isspace() for ch in email):
        raise AdminError("email is not a valid e-mail address")
    if role not in ROLES:
        raise AdminError(f"role must be one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AdminError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    if await session.scalar(select(User.id).where(User.email == email)):
        raise AdminError(f"a user with e-mail {email!r} already exists")
    user = User(
        id=uuid.uuid4(),
        company_id=company.id,
        email=email,
        password_hash=hash_password(password),
        role=role,
        created_at=utcnow(),
    )
    session.add(user)
    await session.flush()
    return user


async def set_password(session: AsyncSession, user: User, password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AdminError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    user.password_hash = hash_password(password)
    await session.flush()


def _issue(kind: str, company_id: uuid.UUID, **binding: uuid.UUID) -> tuple[ApiKey, str]:
    secret = new_api_key()
    key = ApiKey(
        id=uuid.uuid4(),
        key_hash=token_hash(secret),
        prefix=key_display_prefix(secret),
        kind=kind,
        company_id=company_id,
        created_at=utcnow(),
        **binding,
    )
    return key, secret


async def create_pod(
    session: AsyncSession, site_ref: str, pod_id: str, name: str | None
) -> CreatedPod:
    site = await resolve(session, Site, site_ref, "site")
    try:
        slug = _slug.validate_python(pod_id)
    except ValidationError:
        raise AdminError(
            "pod-id must be 1-64 characters of letters, digits, '.', '_' or '-'"
        ) from None
    exists = select(Pod.id).where(Pod.company_id == site.company_id, Pod.pod_id == slug)
    if await session.scalar(exists):
        raise AdminError(f"pod {slug!r} already exists in this company")
    secret = new_stream_secret()
    pod = Pod(
        id=uuid.uuid4(),
        pod_id=slug,
        company_id=site.company_id,
        site_id=site.id,
        name=_name(name or slug, "pod"),
        status="offline",
        stream_token_secret=secret,
        stream_port=8000,
        stream_mode="auto",
        created_at=utcnow(),
    )
    session.add(pod)
    await session.flush()
    key, plain = _issue("pod", site.company_id, pod_id=pod.id)
    session.add(key)
    await session.flush()
    return CreatedPod(pod=pod, site=site, api_key=plain, stream_token_secret=secret)


async def find_pod(session: AsyncSession, pod_ref: str, company_ref: str | None = None) -> Pod:
    """A pod by wire id (optionally within a company) or by UUID."""
    stmt = select(Pod)
    if company_ref is not None:
        company = await resolve(session, Company, company_ref, "company")
        stmt = stmt.where(Pod.company_id == company.id)
    try:
        by_id = await session.scalar(stmt.where(Pod.id == uuid.UUID(pod_ref)))
        if by_id is not None:
            return by_id
    except ValueError:
        pass
    found = list((await session.scalars(stmt.where(Pod.pod_id == pod_ref.strip()))).all())
    if not found:
        raise AdminError(f"pod {pod_ref!r} not found")
    if len(found) > 1:
        raise AdminError(f"pod id {pod_ref!r} exists in several companies; pass --company")
    return found[0]


async def rotate_pod_key(session: AsyncSession, pod: Pod) -> IssuedKey:
    """Revoke every key of the pod and issue a new one (the old one is refused at once)."""
    await session.execute(
        update(ApiKey)
        .where(ApiKey.pod_id == pod.id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    key, plain = _issue("pod", pod.company_id, pod_id=pod.id)
    session.add(key)
    await session.flush()
    return IssuedKey(key=key, api_key=plain)


async def rotate_pod_stream_secret(session: AsyncSession, pod: Pod) -> str:
    """Give the pod a new stream secret and return it (the only time it is shown).

    From the commit on, the portal signs its POD-side tokens with the new secret and refuses
    viewer stream tokens signed with the old one; the only grace is the proxy's access cache
    (``PLATEBRIDGE_STREAM_AUTH_CACHE_SECONDS``, default 2 s, per process) for a credential it
    has just accepted. The POD must get the new secret into its config (and restart): until
    then it refuses the portal's tokens, so streams of that pod fail with 502/401 from the POD.
    """
    secret = new_stream_secret()
    pod.stream_token_secret = secret
    await session.flush()
    return secret


async def issue_enrollment_key(session: AsyncSession, site_ref: str) -> tuple[Site, IssuedKey]:
    """A new key with which unknown PODs register themselves under this site."""
    site = await resolve(session, Site, site_ref, "site")
    key, plain = _issue("enrollment", site.company_id, site_id=site.id)
    session.add(key)
    await session.flush()
    return site, IssuedKey(key=key, api_key=plain)


async def revoke_key(session: AsyncSession, key_id: uuid.UUID) -> None:
    await session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )
