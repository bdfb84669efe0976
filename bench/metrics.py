"""Benchmark: ``GET /metrics`` of the portal with ``--pods`` pods registered (default 10,000,
4 cameras each), target p95 <= 50 ms (issue 14; docs/metrics.md).

The portal app runs in this process (``tests/support/inprocess.py``: the real app and
lifespan over ASGI, a real database), with the metrics token set. Before measuring, every
route template gets a request, so the latency histograms hold their full label set. Each
round times ``--reps`` scrapes and as many ``GET /health`` (the same run's baseline: a JSON
request with one trivial query, through the same transport), alternating.

    .venv/bin/python -m bench.metrics [--backend pg|sqlite|both] [--pods 10000] [--smoke]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._common import median, percentile, ratio, report, table
from bench.seed import open_db, run, seed_company
from platebridge.portal.metrics.collect import Fleet
from platebridge.portal.metrics.collect import render as exposition
from tests.security.routes_table import portal_routes
from tests.support.inprocess import app_portal
from tests.support.portal import create_pg_database, drop_pg_database, migrate, new_sqlite_url

TARGET_MS = 50.0
TOKEN = "bench-metrics-token-0123456789"


async def _seed(db_url: str, n_pods: int) -> None:
    db = open_db(db_url)
    try:
        await seed_company(db, "Metrics Co", n_pods, prefix="mpod")
        if not db.is_sqlite:
            async with db.engine.connect() as conn:
                await conn.exec_driver_sql("COMMIT")
                await conn.exec_driver_sql("VACUUM ANALYZE")
    finally:
        await db.dispose()


def _time(get: Any, path: str, headers: dict[str, str]) -> float:
    start = time.perf_counter()
    r = get(path, headers=headers)
    elapsed = (time.perf_counter() - start) * 1000
    assert r.status_code == 200, (path, r.status_code, r.text[:200])
    return elapsed


def bench_backend(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    tmp = tempfile.mkdtemp(prefix="bench-metrics-")
    db_url = new_sqlite_url(Path(tmp)) if backend == "sqlite" else create_pg_database()
    try:
        migrate(db_url)
        run(_seed(db_url, args.pods))
        auth = {"Authorization": f"Bearer {TOKEN}"}
        with app_portal(db_url, {"PLATEBRIDGE_METRICS_TOKEN": TOKEN}) as portal:
            for route in portal_routes():  # every template gets its histogram series
                if route.method in ("GET", "POST"):
                    path = route.path.replace("{", "x").replace("}", "x").replace(":path", "")
                    portal.client.request(route.method, path)
            metrics: list[float] = []
            health: list[float] = []
            for _ in range(args.warmup):
                _time(portal.client.get, "/metrics", auth)
            for _ in range(args.reps):
                metrics.append(_time(portal.client.get, "/metrics", auth))
                health.append(_time(portal.client.get, "/health", {}))
            body = portal.client.get("/metrics", headers=auth).text
            rendering = []  # the exposition alone (no database, no transport)
            for _ in range(args.reps):
                start = time.perf_counter()
                exposition(Fleet())
                rendering.append((time.perf_counter() - start) * 1000)
        return {
            "pods": args.pods,
            "metrics": _summary(metrics),
            "health (baseline)": _summary(health),
            "render only": _summary(rendering),
            "exposition_bytes": len(body.encode()),
            "exposition_lines": body.count("\n"),
        }
    finally:
        if backend == "pg":
            drop_pg_database(db_url)


def _summary(ms: list[float]) -> dict[str, float]:
    return {"p50_ms": median(ms), "p95_ms": percentile(ms, 95), "n": float(len(ms))}


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "target": f"{backend} /metrics with {r['pods']:,} pods p95 <= {TARGET_MS:.0f} ms",
            "value": f"{r['metrics']['p95_ms']:.1f} ms",
            "met": r["metrics"]["p95_ms"] <= TARGET_MS,
        }
        for backend, r in results.items()
    ]


def render(results: dict[str, Any]) -> str:
    rows = []
    for backend, r in results.items():
        base = r["health (baseline)"]["p95_ms"]
        for name in ("metrics", "health (baseline)", "render only"):
            m = r[name]
            rows.append([backend, name, m["p50_ms"], m["p95_ms"], ratio(m["p95_ms"], base)])
    head = ["db", "request", "p50 ms", "p95 ms", "p95 x health"]
    return table(head, rows)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="/metrics render benchmark")
    p.add_argument("--backend", choices=["pg", "sqlite", "both"], default="both")
    p.add_argument("--pods", type=int, default=10_000)
    p.add_argument("--reps", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    if args.smoke:
        args.pods, args.reps, args.warmup = 50, 3, 1
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    backends = ["pg", "sqlite"] if args.backend == "both" else [args.backend]
    load_before = os.getloadavg()
    results = {b: bench_backend(b, args) for b in backends}
    config = {k: getattr(args, k) for k in ("pods", "reps", "warmup")}
    out = {"config": config, "results": results, "targets": targets(results)}
    out["table"] = render(results)
    return report("metrics", out, load_before, args.out)


if __name__ == "__main__":
    main()
