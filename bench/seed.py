"""Fast seeding for the benchmarks: bulk inserts of pods, keys and cameras.

Companies, communities and sites come from the portal's domain functions; pods, keys and
cameras are bulk ``INSERT``s of the same rows the portal would write (a heartbeat then finds
them exactly as if the pods had registered themselves).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert

from platebridge.portal.db import Database
from platebridge.portal.models import ApiKey, Camera, Pod, User, utcnow
from platebridge.portal.services import admin
from platebridge.portal.services.heartbeat_body import (
    heartbeat_digest,
    parse_heartbeat,
    stored_rtsp_url,
    stream_url,
)
from platebridge.portal.settings import normalize_database_url

CAMERAS_PER_POD = 4
BATCH = 2000


@dataclass
class PodSeed:
    pod_uuid: uuid.UUID
    pod_id: str
    ip: str
    api_key: str
    key_hash: bytes
    body_a: bytes
    body_b: bytes
    digest_a: bytes
    digest_b: bytes


@dataclass
class CompanySeed:
    company_id: uuid.UUID
    site_id: uuid.UUID
    email: str
    password: str
    pods: list[PodSeed]


def pod_ip(index: int) -> str:
    return f"10.{(index >> 16) & 255}.{(index >> 8) & 255}.{index & 255 or 1}"


def heartbeat_doc(pod_id: str, ip: str, variant: str) -> dict[str, Any]:
    """The heartbeat a 4-camera POD sends. Variant ``b`` differs in camera 4 (an error)."""
    cams = []
    for n in range(1, CAMERAS_PER_POD + 1):
        cam: dict[str, Any] = {
            "camera_id": f"cam-{n}",
            "name": f"Gate camera {n}",
            "rtsp_url": f"rtsp://{ip}:554/stream{n}",
            "position": f"lane {n}",
        }
        if variant == "b" and n == CAMERAS_PER_POD:
            cam["status"] = "error"
            cam["error"] = "stalled: no new segment for 4 s"
        cams.append(cam)
    return {
        "pod_id": pod_id,
        "ip_address": ip,
        "firmware_version": "1.0.0",
        "status": "online",
        "cameras": cams,
    }


def _camera_rows(pod_uuid: uuid.UUID, doc: dict[str, Any], now: datetime) -> list[dict[str, Any]]:
    url = stream_url(doc["ip_address"], 8000)
    return [
        {
            "id": uuid.uuid4(),
            "pod_id": pod_uuid,
            "camera_id": c["camera_id"],
            "name": c["name"],
            "stream_url": url,
            "status": c.get("status", "active"),
            "position": c["position"],
            "error": c.get("error"),
            "rtsp_url": stored_rtsp_url(c["rtsp_url"]),
            "created_at": now,
            "updated_at": now,
        }
        for c in doc["cameras"]
    ]


async def _insert(db: Database, model: Any, rows: list[dict[str, Any]]) -> None:
    for i in range(0, len(rows), BATCH):
        async with db.write() as s:
            await s.execute(insert(model), rows[i : i + BATCH])


async def seed_company(
    db: Database, name: str, n_pods: int, *, with_user: bool = False, prefix: str = "pod"
) -> CompanySeed:
    """One company, community and site with ``n_pods`` pods (4 cameras each, all as after a
    variant-A heartbeat: the next identical heartbeat takes the fast path)."""
    password = "bench-password-123"
    email = f"bench-{uuid.uuid4().hex[:10]}@example.test"
    async with db.write() as s:
        company = await admin.create_company(s, name)
        community = await admin.create_community(s, str(company.id), "Community")
        site = await admin.create_site(s, str(community.id), "Main Gate")
        company_id, site_id = company.id, site.id
    if with_user:
        from platebridge.portal.security import hash_password

        async with db.write() as s:
            s.add(
                User(
                    company_id=company_id,
                    email=email,
                    password_hash=hash_password(password),
                    role="viewer",
                    created_at=utcnow(),
                )
            )
    now = utcnow()
    pods: list[PodSeed] = []
    pod_rows: list[dict[str, Any]] = []
    key_rows: list[dict[str, Any]] = []
    cam_rows: list[dict[str, Any]] = []
    for i in range(n_pods):
        pod_uuid = uuid.uuid4()
        pod_id = f"{prefix}-{i:06d}"
        ip = pod_ip(i + 1)
        key = f"pbk_bench{uuid.uuid4().hex}{uuid.uuid4().hex[:8]}"
        doc_a, doc_b = heartbeat_doc(pod_id, ip, "a"), heartbeat_doc(pod_id, ip, "b")
        digest_a = heartbeat_digest(parse_heartbeat(json.dumps(doc_a).encode()))
        digest_b = heartbeat_digest(parse_heartbeat(json.dumps(doc_b).encode()))
        assert digest_a is not None and digest_b is not None
        key_hash = hashlib.sha256(key.encode()).digest()
        pods.append(
            PodSeed(
                pod_uuid,
                pod_id,
                ip,
                key,
                key_hash,
                json.dumps(doc_a, separators=(",", ":")).encode(),
                json.dumps(doc_b, separators=(",", ":")).encode(),
                digest_a,
                digest_b,
            )
        )
        pod_rows.append(
            {
                "id": pod_uuid,
                "pod_id": pod_id,
                "company_id": company_id,
                "site_id": site_id,
                "name": f"POD {i}",
                "ip_address": ip,
                "last_heartbeat": now,
                "status": "online",
                "firmware_version": "1.0.0",
                "stream_token_secret": uuid.uuid4().hex,
                "stream_port": 8000,
                "stream_mode": "proxy",
                "heartbeat_digest": digest_a,
                "created_at": now,
            }
        )
        key_rows.append(
            {
                "id": uuid.uuid4(),
                "key_hash": key_hash,
                "prefix": key[:8],
                "kind": "pod",
                "company_id": company_id,
                "pod_id": pod_uuid,
                "site_id": None,
                "created_at": now,
                "revoked_at": None,
            }
        )
        cam_rows += _camera_rows(pod_uuid, doc_a, now)
    await _insert(db, Pod, pod_rows)
    await _insert(db, ApiKey, key_rows)
    await _insert(db, Camera, cam_rows)
    return CompanySeed(company_id, site_id, email, password, pods)


async def add_pods(db: Database, company: CompanySeed, n_pods: int, prefix: str) -> None:
    """Grow a company by ``n_pods`` more pods (4 cameras each; no keys needed)."""
    now = utcnow()
    pod_rows: list[dict[str, Any]] = []
    cam_rows: list[dict[str, Any]] = []
    for i in range(n_pods):
        pod_uuid = uuid.uuid4()
        pod_id = f"{prefix}-{i:06d}"
        ip = pod_ip(i + 1)
        pod_rows.append(
            {
                "id": pod_uuid,
                "pod_id": pod_id,
                "company_id": company.company_id,
                "site_id": company.site_id,
                "name": f"POD {i}",
                "ip_address": ip,
                "last_heartbeat": now,
                "status": "online",
                "firmware_version": "1.0.0",
                "stream_token_secret": uuid.uuid4().hex,
                "stream_port": 8000,
                "stream_mode": "proxy",
                "heartbeat_digest": None,
                "created_at": now,
            }
        )
        cam_rows += _camera_rows(pod_uuid, heartbeat_doc(pod_id, ip, "a"), now)
        if len(cam_rows) >= 4 * BATCH:
            await _insert(db, Pod, pod_rows)
            await _insert(db, Camera, cam_rows)
            pod_rows, cam_rows = [], []
    await _insert(db, Pod, pod_rows)
    await _insert(db, Camera, cam_rows)


def open_db(db_url: str) -> Database:
    return Database(normalize_database_url(db_url))


def run(coro: Any) -> Any:
    return asyncio.run(coro)
