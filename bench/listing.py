"""Benchmark 2: ``GET /api/cameras`` for a company with 1,000 pods x 4 cameras.

Phase ``base``: the database holds 10 companies of that size; phase ``grown``: the 9 other
companies grow tenfold (10,000 pods each). The viewer's company is unchanged, so its listing
must not slow down (the baseline is phase ``base`` of the same run). Requests are sequential
(wrk, 1 connection): latency, not throughput. The PostgreSQL query plan is recorded.

    .venv/bin/python -m bench.listing [--backend pg|sqlite|both] [--pods 1000] [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from bench._common import WRK_REPORT, ProcWatch, median, ratio, run_portal, run_wrk, table
from bench._common import write_result as _write
from bench.seed import CompanySeed, add_pods, open_db, seed_company
from platebridge.portal.models import User
from platebridge.portal.scoping import scoped_cameras
from tests.support.portal import create_pg_database, drop_pg_database, migrate, new_sqlite_url

COMPANIES = 10


async def _seed(db_url: str, n_pods: int) -> list[CompanySeed]:
    db = open_db(db_url)
    try:
        out = [await seed_company(db, "Viewer Co", n_pods, with_user=True, prefix="vpod")]
        for i in range(1, COMPANIES):
            out.append(await seed_company(db, f"Other Co {i}", n_pods, prefix=f"o{i}pod"))
        return out
    finally:
        await db.dispose()


async def _grow(db_url: str, companies: list[CompanySeed], extra: int) -> None:
    db = open_db(db_url)
    try:
        for i, c in enumerate(companies[1:], 1):
            await add_pods(db, c, extra, prefix=f"o{i}more")
        if not db.is_sqlite:
            async with db.engine.connect() as conn:
                await conn.execute(text("COMMIT"))
                await conn.execute(text("ANALYZE"))
    finally:
        await db.dispose()


async def _plan(db_url: str, company_id: Any) -> list[str]:
    """EXPLAIN ANALYZE of the listing query (PostgreSQL), as the portal builds it."""
    db = open_db(db_url)
    try:
        if db.is_sqlite:
            stmt = scoped_cameras(User(company_id=company_id))
            compiled = stmt.compile(db.engine.sync_engine, compile_kwargs={"literal_binds": True})
            async with db.read() as s:
                rows = await s.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))
                return [str(r[-1]) for r in rows]
        stmt = scoped_cameras(User(company_id=company_id))
        compiled = stmt.compile(db.engine.sync_engine, compile_kwargs={"literal_binds": True})
        async with db.read() as s:
            rows = await s.execute(text(f"EXPLAIN (ANALYZE, BUFFERS OFF) {compiled}"))
            return [str(r[0]) for r in rows]
    finally:
        await db.dispose()


def _measure(base: str, auth: str, args: argparse.Namespace, pid: int) -> dict[str, Any]:
    runs = []
    for _ in range(args.reps):
        watch = ProcWatch({"portal": pid}).start()
        w = run_wrk(
            base + "/api/cameras",
            WRK_REPORT,
            duration=args.duration,
            connections=1,
            path="/api/cameras",
            auth=auth,
        )
        usage = watch.stop()["portal"]
        runs.append((w, usage))
    return {
        "requests": sum(w.requests for w, _ in runs),
        "p50_ms": median([w.p50_ms for w, _ in runs]),
        "p95_ms": median([w.p95_ms for w, _ in runs]),
        "p99_ms": median([w.p99_ms for w, _ in runs]),
        "rps": median([w.rps for w, _ in runs]),
        "errors": sum(w.failed for w, _ in runs),
        "portal_rss_peak_mb": max(u.rss_peak_mb for _, u in runs),
    }


def bench_backend(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    if backend == "pg":
        db_url = create_pg_database("pb_bench_list")
    else:
        db_url = new_sqlite_url(Path(tempfile.mkdtemp(prefix="pb-bench-list-")))
    try:
        migrate(db_url)
        t0 = time.monotonic()
        companies = asyncio.run(_seed(db_url, args.pods))
        seed_s = time.monotonic() - t0
        viewer = companies[0]
        out: dict[str, Any] = {"seed_seconds": round(seed_s, 1)}
        with run_portal(db_url) as portal:
            r = httpx.post(
                portal.base + "/api/auth/login",
                json={"email": viewer.email, "password": viewer.password},
                timeout=30,
            )
            r.raise_for_status()
            auth = f"Bearer {r.json()['access_token']}"
            check = httpx.get(portal.base + "/api/cameras", headers={"Authorization": auth})
            check.raise_for_status()
            n_cams = len(check.json()["cameras"])
            assert n_cams == 4 * args.pods, n_cams
            out["cameras_listed"] = n_cams
            out["response_bytes"] = len(check.content)
            out["base"] = _measure(portal.base, auth, args, portal.pid)
            out["plan_base"] = asyncio.run(_plan(db_url, viewer.company_id))
            t0 = time.monotonic()
            asyncio.run(_grow(db_url, companies, args.pods * 9))
            out["grow_seconds"] = round(time.monotonic() - t0, 1)
            out["grown"] = _measure(portal.base, auth, args, portal.pid)
            out["plan_grown"] = asyncio.run(_plan(db_url, viewer.company_id))
        out["total_cameras_base"] = COMPANIES * 4 * args.pods
        out["total_cameras_grown"] = 4 * args.pods * (1 + (COMPANIES - 1) * 10)
        out["grown_vs_base_p95"] = ratio(out["grown"]["p95_ms"], out["base"]["p95_ms"])
        return out
    finally:
        if backend == "pg":
            drop_pg_database(db_url)


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for backend, r in results.items():
        for phase in ("base", "grown"):
            out.append(
                {
                    "target": f"listing {backend} {phase} p95 <= 20 ms",
                    "value": f"{r[phase]['p95_ms']:.1f} ms",
                    "met": r[phase]["p95_ms"] <= 20,
                }
            )
        out.append(
            {
                "target": f"listing {backend} no slowdown when others grow 10x (<= 1.25x)",
                "value": f"{r['grown_vs_base_p95']:.2f} x",
                "met": r["grown_vs_base_p95"] <= 1.25,
            }
        )
    return out


def render(results: dict[str, Any]) -> str:
    rows = []
    for backend, r in results.items():
        for phase in ("base", "grown"):
            m = r[phase]
            total = r[f"total_cameras_{phase}"]
            rows.append(
                [
                    backend,
                    phase,
                    f"{total:,}",
                    r["cameras_listed"],
                    m["p50_ms"],
                    m["p95_ms"],
                    m["p99_ms"],
                    ratio(m["p95_ms"], r["base"]["p95_ms"]),
                    f"{m['portal_rss_peak_mb']:.0f}",
                    m["errors"],
                ]
            )
    head = ["db", "phase", "cameras in db", "listed", "p50 ms", "p95 ms", "p99 ms", "x base"]
    return table([*head, "portal RSS MB", "err"], rows)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="camera listing benchmark")
    p.add_argument("--backend", choices=["pg", "sqlite", "both"], default="both")
    p.add_argument("--pods", type=int, default=1000, help="pods per company (4 cameras each)")
    p.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    if args.smoke:
        args.pods, args.duration, args.reps = 5, 1.0, 1
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    backends = ["pg", "sqlite"] if args.backend == "both" else [args.backend]
    results = {b: bench_backend(b, args) for b in backends}
    config = {"pods_per_company": args.pods, "companies": COMPANIES, "reps": args.reps}
    config["duration_s"] = args.duration
    out = {"config": config, "results": results, "targets": targets(results)}
    out["table"] = render(results)
    print(out["table"])
    for t in out["targets"]:
        print(f"  {'MET   ' if t['met'] else 'MISSED'} {t['target']}: {t['value']}")
    path = _write("listing", out, args.out)
    print(f"wrote {path}")
    return json.loads(path.read_text())


if __name__ == "__main__":
    main()
