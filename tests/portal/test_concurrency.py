"""50 heartbeats at once (same pod, different pods, one new pod) leave exactly one row each."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.portal.conftest import Portal
from tests.portal.test_enrollment_offline import enroll_key
from tests.portal.test_heartbeat import camera_payload
from tests.support.portal import SeededCompany, sql

pytestmark = pytest.mark.e2e  # a real portal process (tests/conftest.py guards it)

N = 50
HB = "/api/pod/heartbeat"


async def _fire(
    url: str, jobs: list[tuple[dict[str, str], dict[str, Any]]]
) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=N)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        return await asyncio.gather(*(client.post(HB, headers=h, json=p) for h, p in jobs))


def fire(portal: Portal, jobs: list[tuple[dict[str, str], dict[str, Any]]]) -> list[httpx.Response]:
    responses = asyncio.run(_fire(portal.url, jobs))
    assert [r.status_code for r in responses] == [200] * len(jobs), [
        r.text for r in responses if r.status_code != 200
    ][:3]
    return responses


def _counts(
    portal: Portal, t: SeededCompany
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    cid = t.company_id.replace("-", "") if portal.db_url.startswith("sqlite") else t.company_id
    pods = sql(
        portal.db_url,
        "SELECT pod_id, count(*) FROM pods WHERE company_id = :c GROUP BY pod_id ORDER BY pod_id",
        c=cid,
    )
    cams = sql(
        portal.db_url,
        "SELECT p.pod_id, c.camera_id, count(*) FROM cameras c JOIN pods p ON p.id = c.pod_id "
        "WHERE p.company_id = :c GROUP BY p.pod_id, c.camera_id ORDER BY p.pod_id, c.camera_id",
        c=cid,
    )
    return pods, cams


def test_same_pod_concurrently(portal: Portal, tenant: SeededCompany) -> None:
    # Half identical (fast path after the first), half with changing camera sets (slow path).
    jobs = [
        (
            tenant.pod_auth,
            camera_payload("cam-a", "cam-b") if i % 2 else camera_payload(f"cam-{i % 5}"),
        )
        for i in range(N)
    ]
    fire(portal, jobs)
    pods, cams = _counts(portal, tenant)
    assert pods == [(tenant.pod_id, 1)]
    assert all(n == 1 for *_, n in cams)
    assert {c for _, c, _ in cams} == {
        "cam-a",
        "cam-b",
        "cam-0",
        "cam-1",
        "cam-2",
        "cam-3",
        "cam-4",
    }


def test_many_pods_and_one_new_pod_concurrently(portal: Portal, tenant: SeededCompany) -> None:
    key = enroll_key(portal.db_url, tenant.site_id)
    jobs = []
    for i in range(N):
        payload = camera_payload("cam-1", "cam-2")
        payload["pod_id"] = f"pod-{i:02d}"
        jobs.append((key, payload))
    fire(portal, jobs)
    pods, cams = _counts(portal, tenant)
    expected = sorted([(tenant.pod_id, 1)] + [(f"pod-{i:02d}", 1) for i in range(N)])
    assert sorted(pods) == expected
    assert len(cams) == 2 * N and all(n == 1 for *_, n in cams)

    # 50 first heartbeats of one unknown pod at once: one registration, one row.
    same = camera_payload("cam-1")
    same["pod_id"] = "brand-new-pod"
    responses = fire(portal, [(key, same)] * N)
    assert sum(r.json()["registered"] for r in responses) == 1
    pods, cams = _counts(portal, tenant)
    assert ("brand-new-pod", 1) in pods and len(pods) == N + 2
    assert [c for c in cams if c[0] == "brand-new-pod"] == [("brand-new-pod", "cam-1", 1)]
