"""Demo tenant for ``scripts/demo.sh``: idempotent, always hands back working credentials."""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from platebridge.portal.models import Community, Company, Pod, Site, User
from platebridge.portal.services import admin
from platebridge.portal.services.pod_config import pod_config

DEMO_COMPANY = "Demo Company"
DEMO_COMMUNITY = "Demo Community"
DEMO_SITE = "Main Gate"
DEMO_EMAIL = "admin@demo.platebridge.local"
DEMO_POD = "main-gate-pod"
DEMO_POD_NAME = "Main Gate POD"


async def seed_demo(session: AsyncSession, portal_url: str) -> dict[str, Any]:
    """Create (or reuse) the demo company/community/site/admin/pod; reset the admin password
    and rotate the pod key so the returned secrets are valid."""
    company = await session.scalar(select(Company).where(Company.name == DEMO_COMPANY))
    if company is None:
        company = await admin.create_company(session, DEMO_COMPANY)
    community = await session.scalar(
        select(Community).where(
            Community.company_id == company.id, Community.name == DEMO_COMMUNITY
        )
    )
    if community is None:
        community = await admin.create_community(session, str(company.id), DEMO_COMMUNITY)
    site = await session.scalar(
        select(Site).where(Site.community_id == community.id, Site.name == DEMO_SITE)
    )
    if site is None:
        site = await admin.create_site(session, str(community.id), DEMO_SITE)
    password = secrets.token_urlsafe(12)
    user = await session.scalar(select(User).where(User.email == DEMO_EMAIL))
    if user is None:
        user = await admin.create_user(session, str(company.id), DEMO_EMAIL, password, "admin")
    else:
        await admin.set_password(session, user, password)
    pod = await session.scalar(
        select(Pod).where(Pod.company_id == company.id, Pod.pod_id == DEMO_POD)
    )
    if pod is None:
        created = await admin.create_pod(session, str(site.id), DEMO_POD, DEMO_POD_NAME)
        pod, api_key = created.pod, created.api_key
    else:
        api_key = (await admin.rotate_pod_key(session, pod)).api_key
    return {
        "company_id": str(company.id),
        "community_id": str(community.id),
        "site_id": str(site.id),
        "user_id": str(user.id),
        "email": DEMO_EMAIL,
        "password": password,
        "pod_id": pod.pod_id,
        "api_key": api_key,
        "stream_token_secret": pod.stream_token_secret,
        "portal_url": portal_url,
        "pod_config": pod_config(pod.pod_id, portal_url, api_key, pod.stream_token_secret),
    }
