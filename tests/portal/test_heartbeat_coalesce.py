"""PostgreSQL fast path: concurrent unchanged heartbeats share one statement (group commit).

In-process (``Database`` + ``services.heartbeat``), real PostgreSQL. Each caller must get its
own answer: its pod's stream mode when its key, pod_id and digest match, None (the slow path)
otherwise — whatever else is in the same batch.
"""

from __future__ import annotations

import asyncio
import collections
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select, update

from platebridge.core.heartbeat import HeartbeatRequest
from platebridge.portal import db as db_module
from platebridge.portal.db import Database
from platebridge.portal.models import ApiKey, Pod
from platebridge.portal.security import token_hash
from platebridge.portal.services import admin
from platebridge.portal.services import heartbeat as hb
from platebridge.portal.services.heartbeat_body import heartbeat_digest
from platebridge.portal.settings import normalize_database_url
from tests.conftest import require_postgres
from tests.support.portal import create_pg_database, drop_pg_database, migrate

N_PODS = 12


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    require_postgres()
    url = create_pg_database("pb_test_coalesce")
    try:
        migrate(url)
        yield url
    finally:
        drop_pg_database(url)


def _request(pod_id: str, camera: str = "cam-1") -> HeartbeatRequest:
    return HeartbeatRequest.model_validate(
        {
            "pod_id": pod_id,
            "ip_address": "10.0.0.7",
            "status": "online",
            "cameras": [{"camera_id": camera, "name": camera, "rtsp_url": "rtsp://10.0.0.8/s"}],
        }
    )


Seeded = list[tuple[bytes, HeartbeatRequest, bytes]]


async def _pods(db: Database) -> Seeded:
    """N pods of a new company, each as after one applied heartbeat (its digest stored):
    (key hash, request, digest)."""
    out = []
    async with db.write() as s:
        company = await admin.create_company(s, f"Coalesce {uuid.uuid4().hex[:8]}")
        community = await admin.create_community(s, str(company.id), "C")
        site = await admin.create_site(s, str(community.id), "S")
        for n in range(N_PODS):
            created = await admin.create_pod(s, str(site.id), f"pod-{n}", f"Pod {n}")
            created.pod.stream_mode = "tunnel" if n % 2 else "proxy"
            req = _request(f"pod-{n}")
            digest = heartbeat_digest(req)
            assert digest is not None
            created.pod.heartbeat_digest = digest
            out.append((token_hash(created.api_key), req, digest))
    return out


def _run(pg_url: str, body: Any) -> Any:
    async def main() -> Any:
        db = Database(normalize_database_url(pg_url))
        try:
            return await body(db)
        finally:
            await db.dispose()

    return asyncio.run(main())


def _count_statements(db: Database, sql: str) -> collections.Counter[int]:
    """Batch sizes of every run of ``sql`` on ``db`` (wraps ``Database.pg_fetch``)."""
    sizes: collections.Counter[int] = collections.Counter()
    original = db.pg_fetch

    async def spy(statement: str, *args: Any) -> list[Any]:
        if statement == sql:
            sizes[len(args[-1])] += 1
        return await original(statement, *args)

    db.pg_fetch = spy  # type: ignore[method-assign,assignment]
    return sizes


def test_concurrent_heartbeats_share_statements_and_each_gets_its_answer(pg_url: str) -> None:
    async def body(db: Database) -> None:
        pods = await _pods(db)
        sizes = _count_statements(db, hb._FAST_SQL_PG)
        now = datetime.now(UTC)
        modes = await asyncio.gather(
            *(hb.fast_heartbeat(db, k, req.pod_id, d, now) for k, req, d in pods * 3)
        )
        # Each pod three times: at least one of each pod's heartbeats is answered; a pod twice
        # in one batch answers once (None sends the other to the slow path, which is correct).
        for n in range(N_PODS):
            mine = [m for i, m in enumerate(modes) if i % N_PODS == n]
            assert set(mine) - {None} == {"tunnel" if n % 2 else "proxy"}, (n, mine)
        assert sum(sizes.values()) < len(pods) * 3, sizes  # fewer statements than heartbeats
        assert max(sizes) > 1, sizes
        hashes = [k for k, _r, _d in pods]
        async with db.read() as s:
            query = (
                select(Pod.last_heartbeat)
                .join(ApiKey, ApiKey.pod_id == Pod.id)
                .where(ApiKey.key_hash.in_(hashes))
            )
            stamps = (await s.execute(query)).scalars().all()
        assert stamps == [now] * N_PODS

    _run(pg_url, body)


def test_a_refused_heartbeat_does_not_disturb_its_batch(pg_url: str) -> None:
    """Wrong digest, wrong pod_id, unknown key, revoked key: None for that caller only."""

    async def body(db: Database) -> None:
        pods = await _pods(db)
        (k0, r0, _d0), (k1, _r1, _d1), (_k2, r2, d2), (k3, r3, d3), *rest = pods
        async with db.write() as s:
            await s.execute(
                update(ApiKey).where(ApiKey.key_hash == k3).values(revoked_at=datetime.now(UTC))
            )
        now = datetime.now(UTC)
        calls = [
            hb.fast_heartbeat(db, k0, r0.pod_id, b"\0" * 32, now),  # changed content
            hb.fast_heartbeat(db, k1, r2.pod_id, d2, now),  # another pod's pod_id with this key
            hb.fast_heartbeat(db, b"\1" * 32, r2.pod_id, d2, now),  # unknown key
            hb.fast_heartbeat(db, k3, r3.pod_id, d3, now),  # revoked key
            *(hb.fast_heartbeat(db, k, req.pod_id, d, now) for k, req, d in rest),
        ]
        modes = await asyncio.gather(*calls)
        assert modes[:4] == [None, None, None, None]
        offset = 4
        assert modes[4:] == ["tunnel" if n % 2 else "proxy" for n in range(offset, N_PODS)]

    _run(pg_url, body)


def test_runs_in_flight_are_bounded_and_queued_callers_still_answered(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_module, "COALESCE_MAX_BATCH", 3)

    async def body(db: Database) -> None:
        pods = await _pods(db)
        in_flight = peak = 0
        original = db.pg_fetch

        async def slow(statement: str, *args: Any) -> list[Any]:
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            try:
                await asyncio.sleep(0.01)
                return await original(statement, *args)
            finally:
                in_flight -= 1

        db.pg_fetch = slow  # type: ignore[method-assign,assignment]
        now = datetime.now(UTC)
        modes = await asyncio.gather(
            *(hb.fast_heartbeat(db, k, r.pod_id, d, now) for k, r, d in pods)
        )
        assert modes == ["tunnel" if n % 2 else "proxy" for n in range(N_PODS)]
        assert peak == db_module.COALESCE_IN_FLIGHT

    _run(pg_url, body)


def test_a_failing_statement_fails_every_caller_of_its_batch(pg_url: str) -> None:
    async def body(db: Database) -> None:
        pods = await _pods(db)

        async def broken(statement: str, *args: Any) -> list[Any]:
            raise ConnectionResetError("database went away")

        db.pg_fetch = broken  # type: ignore[method-assign,assignment]
        now = datetime.now(UTC)
        results = await asyncio.gather(
            *(hb.fast_heartbeat(db, k, r.pod_id, d, now) for k, r, d in pods[:4]),
            return_exceptions=True,
        )
        assert all(isinstance(r, ConnectionResetError) for r in results), results

    _run(pg_url, body)


def test_the_batch_statement_is_index_lookups_even_on_unanalysed_tables(pg_url: str) -> None:
    """A fresh database (statistics say "tiny") planned a scan of api_keys per batch row."""

    async def body(db: Database) -> list[str]:
        pods = await _pods(db)
        arrays = [list(c) for c in zip(*pods, strict=True)]
        now = datetime.now(UTC)
        keys, reqs, digests = arrays
        params = (
            keys,
            [r.pod_id for r in reqs],
            digests,
            [now] * len(pods),
            list(range(len(pods))),
        )
        rows = await db.pg_fetch("EXPLAIN " + hb._FAST_SQL_PG, *params)
        return [str(r[0]) for r in rows]

    plan = "\n".join(_run(pg_url, body))
    assert "Seq Scan" not in plan, plan
    assert "Index Scan using uq_api_keys_key_hash" in plan, plan  # pods: by pk or (.., pod_id)
