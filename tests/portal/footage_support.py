"""Helpers for the footage and share tests: users of a role, footage tokens, shares."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import httpx

from tests.support.portal import SeededCompany, cli_json, login


def add_user(portal_url: str, db_url: str, seeded: SeededCompany, role: str) -> dict[str, str]:
    """A signed-in user of ``role`` in the seeded company (created by the CLI): its auth."""
    email = f"{role}-{uuid.uuid4().hex[:8]}@example.test"
    password = f"pw-{uuid.uuid4().hex[:12]}"
    cli_json(
        db_url, "user", "create", "--company", seeded.company_id, "--email", email,
        "--password", password, "--role", role,
    )  # fmt: skip
    return login(portal_url, email, password)


def footage_token(
    portal_url: str,
    auth: Mapping[str, str],
    pod_id: str,
    camera_id: str,
    start: Any,
    end: Any,
) -> httpx.Response:
    return httpx.post(
        f"{portal_url}/api/footage-token",
        headers=dict(auth),
        json={"pod_id": pod_id, "camera_id": camera_id, "from": start, "to": end},
        timeout=15,
    )


def create_share(
    portal_url: str,
    auth: Mapping[str, str],
    pod_id: str,
    camera_id: str,
    start: float,
    end: float,
    hours: Any = 1,
) -> httpx.Response:
    body = {
        "pod_id": pod_id,
        "camera_id": camera_id,
        "from": start,
        "to": end,
        "expires_in_hours": hours,
    }
    return httpx.post(f"{portal_url}/api/shares", headers=dict(auth), json=body, timeout=15)
