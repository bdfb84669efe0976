"""Load: N simulated PODs heartbeating (staggered, jittered) + V viewers on the proxy, against a
real portal process, bounded in time. Reports portal RSS/fds at start and end, p50/p99
latencies, errors, and checks every POD's ``last_heartbeat`` is current at the end.

    python -m tests.soak.load --pods 2000 --viewers 20 --duration 600 --interval 60   # full
    python -m tests.soak.load --pods 50 --viewers 3 --duration 10 --interval 1        # CI

Database: ``--db postgres`` (a fresh database on 127.0.0.1:5432, dropped after) or ``sqlite``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from tests.faults.procstat import usage
from tests.portal.relay_upstreams import LoopThread
from tests.portal.streaming_support import FakePod, heartbeat, portal_process
from tests.support.portal import (
    create_pg_database,
    drop_pg_database,
    migrate,
    new_sqlite_url,
    seed_company,
    sql,
)


@dataclass
class Series:
    samples: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    def ok(self, seconds: float) -> None:
        self.samples.append(seconds)

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1

    def summary(self) -> dict[str, Any]:
        s = sorted(self.samples)

        def pct(p: float) -> float:
            return round(s[min(len(s) - 1, int(p * len(s)))] * 1000, 1) if s else 0.0

        return {
            "requests": len(s),
            "errors": sum(self.errors.values()),
            "error_kinds": self.errors,
            "p50_ms": pct(0.50),
            "p99_ms": pct(0.99),
            "max_ms": round(s[-1] * 1000, 1) if s else 0.0,
        }


@dataclass
class LoadResult:
    pods: int
    viewers: int
    duration_s: float
    interval_s: float
    backend: str
    heartbeat: dict[str, Any]
    viewer: dict[str, Any]
    rss_start_kib: int
    rss_end_kib: int
    fds_start: int
    fds_end: int
    stale_pods: int
    registered_pods: int


async def _seed_pods(db_url: str, site_id: str, n: int) -> list[str]:
    """``n`` pods with their own pod keys (what real PODs use: the heartbeat fast path)."""
    from platebridge.portal.db import Database
    from platebridge.portal.services import admin
    from platebridge.portal.settings import normalize_database_url

    db = Database(normalize_database_url(db_url))
    try:
        async with db.write() as s:
            return [
                (await admin.create_pod(s, site_id, f"soak-pod-{i:05d}", None)).api_key
                for i in range(n)
            ]
    finally:
        await db.dispose()


async def _viewers_pod(
    client: httpx.AsyncClient, url: str, auth: dict[str, str], body: dict[str, Any],
    a: argparse.Namespace, end: float,
) -> None:  # fmt: skip
    """Keep the POD the viewers watch online for the whole run."""
    while time.monotonic() < end:
        await asyncio.sleep(min(a.interval, 10))
        with contextlib.suppress(httpx.HTTPError):
            await client.post(url, json=body, headers=auth)


async def _pod(
    client: httpx.AsyncClient, url: str, key: str, i: int, a: argparse.Namespace, end: float,
    series: Series,
) -> None:  # fmt: skip
    rng = random.Random(i)
    body = {
        "pod_id": f"soak-pod-{i:05d}",
        "ip_address": f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}",
        "firmware_version": "1.0.0",
        "status": "online",
        "cameras": [{"camera_id": "gate-camera-1", "name": "Gate"}],
    }
    await asyncio.sleep(rng.uniform(0, a.interval))  # staggered start
    while time.monotonic() < end:
        start = time.monotonic()
        try:
            r = await client.post(url, json=body, headers={"Authorization": f"Bearer {key}"})
            if r.status_code == 200:
                series.ok(time.monotonic() - start)
            else:
                series.error(f"http_{r.status_code}")
        except httpx.HTTPError as exc:
            series.error(type(exc).__name__)
        await asyncio.sleep(a.interval * rng.uniform(0.9, 1.1))  # jitter ±10 %


async def _viewer(
    client: httpx.AsyncClient, base: str, pod_id: str, auth: dict[str, str], end: float,
    series: Series,
) -> None:  # fmt: skip
    params = {"camera_id": "gate-camera-1"}
    while time.monotonic() < end:
        start = time.monotonic()
        try:
            r = await client.get(f"{base}/api/pod/proxy-stream/{pod_id}", params=params,
                                 headers=auth)  # fmt: skip
            if r.status_code != 200:
                series.error(f"playlist_{r.status_code}")
            else:
                seg = [ln for ln in r.text.splitlines() if ln and not ln.startswith("#")][-1]
                s = await client.get(base + seg, headers=auth)
                if s.status_code == 200 and s.content:
                    series.ok(time.monotonic() - start)
                else:
                    series.error(f"segment_{s.status_code}")
        except httpx.HTTPError as exc:
            series.error(type(exc).__name__)
        await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - start)))


async def _drive(
    base: str, keys: list[str], viewed: tuple[dict[str, str], dict[str, Any]], pod_id: str,
    auth: dict[str, str], a: argparse.Namespace, hb: Series, view: Series,
) -> None:  # fmt: skip
    end = time.monotonic() + a.duration
    limits = httpx.Limits(max_connections=a.connections, max_keepalive_connections=a.connections)
    async with (
        httpx.AsyncClient(limits=limits, timeout=30) as pods_client,
        httpx.AsyncClient(timeout=30) as viewers_client,
    ):
        url = f"{base}/api/pod/heartbeat"
        tasks = [_pod(pods_client, url, key, i, a, end, hb) for i, key in enumerate(keys)]
        tasks.append(_viewers_pod(viewers_client, url, *viewed, a, end))
        tasks += [_viewer(viewers_client, base, pod_id, auth, end, view) for _ in range(a.viewers)]
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=a.duration + a.interval * 1.2 + 60)


def run(a: argparse.Namespace) -> LoadResult:
    if a.db == "postgres":
        db = create_pg_database("pb_soak")
        migrate(db)
    else:
        db = new_sqlite_url()
    lt = LoopThread()
    pod = FakePod(lt)
    try:
        env = {"PLATEBRIDGE_THROTTLE_HEARTBEAT_PER_IP": "100000",
               "PLATEBRIDGE_OFFLINE_AFTER": str(int(a.interval * 3) + 5)}  # fmt: skip
        with portal_process(db, env) as portal:
            co = seed_company(db)
            keys = asyncio.run(_seed_pods(db, co.site_id, a.pods))
            heartbeat(portal.url, co, "127.0.0.1", pod.port)  # the viewers' POD
            auth = portal.login(co.email, co.password)
            hb, view = Series(), Series()
            first = usage(portal.proc.pid)
            started = time.monotonic()
            cams = [{"camera_id": "gate-camera-1", "name": "Gate-Camera-1"}]
            viewed = (co.pod_auth, {"pod_id": co.pod_id, "ip_address": "127.0.0.1",
                      "stream_port": pod.port, "status": "online", "cameras": cams})  # fmt: skip
            asyncio.run(_drive(portal.url, keys, viewed, co.pod_id, auth, a, hb, view))
            elapsed = time.monotonic() - started
            last = usage(portal.proc.pid)
            cutoff = datetime.now(UTC).timestamp() - a.interval * 1.1 - 5
            rows = sql(db, "SELECT last_heartbeat FROM pods WHERE pod_id LIKE 'soak-pod-%'")
            stale = sum(1 for (ts,) in rows if ts is None or _epoch(ts) < cutoff)
        return LoadResult(
            pods=a.pods, viewers=a.viewers, duration_s=round(elapsed, 1), interval_s=a.interval,
            backend=a.db, heartbeat=hb.summary(), viewer=view.summary(),
            rss_start_kib=first.rss_kib, rss_end_kib=last.rss_kib, fds_start=first.fds,
            fds_end=last.fds, stale_pods=stale, registered_pods=len(rows),
        )  # fmt: skip
    finally:
        pod.close()
        lt.stop()
        if a.db == "postgres":
            drop_pg_database(db)


def _epoch(ts: Any) -> float:
    if isinstance(ts, str):
        ts = datetime.fromisoformat(ts)
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return float(ts.timestamp())


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--pods", type=int, default=2000)
    p.add_argument("--viewers", type=int, default=20)
    p.add_argument("--duration", type=float, default=600)
    p.add_argument("--interval", type=float, default=60)
    p.add_argument("--connections", type=int, default=100)
    p.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    p.add_argument("--out", type=Path, help="write the result as JSON here")
    return p


def main(argv: list[str] | None = None) -> int:
    a = parser().parse_args(argv)
    result = run(a)
    text = json.dumps(asdict(result), indent=2)
    print(text)
    if a.out:
        a.out.write_text(text + "\n")
    ok = result.heartbeat["errors"] == 0 and result.viewer["errors"] == 0
    ok = ok and result.stale_pods == 0 and result.registered_pods == a.pods
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
