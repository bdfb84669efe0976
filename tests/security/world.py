"""Two companies side by side on one real portal, for the isolation, role and leak tests.

Every value of company B is distinctive ("zulu…", 127.0.0.77), so a leak of B's data into a
response of company A can be found by a plain substring search.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support.portal import in_session, login


@dataclass
class Company:
    tag: str
    company_id: str
    company_name: str
    community_id: str
    site_id: str
    site_name: str
    admin_email: str
    admin_id: str
    viewer_email: str
    viewer_id: str
    password: str
    pod_id: str  # unique to this company
    pod_name: str
    shared_pod_id: str  # a pod id both companies use
    camera_id: str
    camera_name: str
    ip: str
    api_key: str
    stream_secret: str
    shared_api_key: str
    admin_auth: dict[str, str] = field(default_factory=dict)
    viewer_auth: dict[str, str] = field(default_factory=dict)
    audit_ids: list[str] = field(default_factory=list)
    share_ids: list[str] = field(default_factory=list)
    endpoint_ids: list[str] = field(default_factory=list)  # alert endpoints (issue 14)
    endpoint_secrets: list[str] = field(default_factory=list)

    def secrets(self) -> list[str]:
        return [
            self.password,
            self.api_key,
            self.stream_secret,
            self.shared_api_key,
            *self.endpoint_secrets,
        ]

    def fingerprints(self) -> list[str]:
        """Strings that must never appear in a response to the *other* company."""
        return [
            self.company_id,
            self.company_name,
            self.community_id,
            self.site_id,
            self.site_name,
            self.admin_email,
            self.admin_id,
            self.viewer_email,
            self.viewer_id,
            self.pod_name,
            self.camera_name,
            self.ip,
            *self.audit_ids,
            *self.share_ids,
            *self.endpoint_ids,
            *self.secrets(),
        ]


def seed(db_url: str, tag: str, ip: str) -> Company:
    """A company tagged ``tag`` (admin, viewer, its own pod and the shared ``main-gate-pod``)."""
    from platebridge.portal.services import admin

    suffix = uuid.uuid4().hex[:6]
    password = f"pw-{tag}-{uuid.uuid4().hex[:10]}"

    async def create(s: Any) -> Company:
        company = await admin.create_company(s, f"{tag.title()} Company {suffix}")
        community = await admin.create_community(s, str(company.id), f"{tag} community")
        site = await admin.create_site(s, str(community.id), f"{tag.title()} Site {suffix}")
        adm = await admin.create_user(
            s, str(company.id), f"{tag}-admin-{suffix}@example.test", password, "admin"
        )
        viewer = await admin.create_user(
            s, str(company.id), f"{tag}-viewer-{suffix}@example.test", password, "viewer"
        )
        pod = await admin.create_pod(
            s, str(site.id), f"{tag}-pod-{suffix}", f"{tag.title()} Gate POD {suffix}"
        )
        shared = await admin.create_pod(s, str(site.id), "main-gate-pod", None)
        return Company(
            tag=tag,
            company_id=str(company.id),
            company_name=company.name,
            community_id=str(community.id),
            site_id=str(site.id),
            site_name=site.name,
            admin_email=adm.email,
            admin_id=str(adm.id),
            viewer_email=viewer.email,
            viewer_id=str(viewer.id),
            password=password,
            pod_id=pod.pod.pod_id,
            pod_name=pod.pod.name,
            shared_pod_id="main-gate-pod",
            camera_id=f"{tag}-cam-{suffix}",
            camera_name=f"{tag.title()} Camera {suffix}",
            ip=ip,
            api_key=pod.api_key,
            stream_secret=pod.stream_token_secret,
            shared_api_key=shared.api_key,
        )

    company: Company = asyncio.run(in_session(db_url, create))
    return company


def heartbeat_body(co: Company, pod_id: str, ip: str) -> dict[str, Any]:
    return {
        "pod_id": pod_id,
        "ip_address": ip,
        "firmware_version": "1.0.0",
        "status": "online",
        "cameras": [
            {
                "camera_id": co.camera_id,
                "name": co.camera_name,
                "rtsp_url": f"rtsp://{co.tag}user:{co.tag}rtsp-pass@{ip}:554/stream",
                "position": f"{co.tag} entrance",
            }
        ],
    }


def populate(base: str, co: Company) -> None:
    """Heartbeats (pods online with a camera), logins, and audit rows when auditing exists."""
    for pod_id, key in ((co.pod_id, co.api_key), (co.shared_pod_id, co.shared_api_key)):
        r = httpx.post(
            f"{base}/api/pod/heartbeat",
            headers={"Authorization": f"Bearer {key}"},
            json=heartbeat_body(co, pod_id, co.ip),
            timeout=10,
        )
        assert r.status_code == 200, r.text
    co.admin_auth = login(base, co.admin_email, co.password)
    co.viewer_auth = login(base, co.viewer_email, co.password)
    r = httpx.post(
        f"{base}/api/pod/stream-token",
        headers=co.admin_auth,
        json={"pod_id": co.pod_id, "camera_id": co.camera_id},
        timeout=10,
    )
    if r.status_code == 404 and r.json().get("detail") == "Not Found":
        return  # no streaming routes (yet)
    assert r.status_code == 200, r.text
    r = httpx.post(
        f"{base}/api/shares",
        headers=co.admin_auth,
        json={
            "pod_id": co.pod_id,
            "camera_id": co.camera_id,
            "from": 1764700000,
            "to": 1764700060,
            "expires_in_hours": 24,
        },
        timeout=10,
    )
    if r.status_code == 201:  # share links (issue 13)
        co.share_ids = [r.json()["id"]]
    r = httpx.post(
        f"{base}/api/alerts/endpoints",
        headers=co.admin_auth,
        json={"kind": "webhook", "name": f"{co.tag} hook", "url": f"https://{co.tag}.example/h"},
        timeout=10,
    )
    if r.status_code == 201:  # alerts (issue 14)
        co.endpoint_ids = [r.json()["id"]]
        co.endpoint_secrets = [r.json()["secret"]]
    r = httpx.get(f"{base}/api/audit", headers=co.admin_auth, timeout=10)
    if r.status_code == 200:
        body = r.json()
        events = body.get("events", body.get("items", [])) if isinstance(body, dict) else body
        co.audit_ids = [str(e["id"]) for e in events if isinstance(e, dict) and "id" in e]
