"""Before/after for portal optimisations: two portals on the SAME database, one running this
checkout's code, one running an older commit's ``src`` (``git worktree add DIR COMMIT``),
measured alternately (A, B, A, B, ...) so machine noise hits both alike.

    git worktree add /tmp/pb-before <commit>
    .venv/bin/python -m bench.ab_portal --before-src /tmp/pb-before/src [--backend pg]

Measures heartbeat ``unchanged`` and ``changed`` (wrk, 32 connections) and ``GET /api/cameras``
of a 1,000-pod company (1 connection). The old code is imported through ``PYTHONPATH`` ahead of
the editable install; the schema is this checkout's (migrations only ever add).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

import httpx

from bench._common import WRK_REPORT, median, ratio, run_portal, run_wrk, table
from bench._common import write_result as _write
from bench.heartbeat import LUA, _reset_digests, _restore_digests
from bench.seed import open_db, seed_company
from tests.support.portal import create_pg_database, drop_pg_database, migrate, new_sqlite_url


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description="before/after portal A/B")
    p.add_argument("--before-src", required=True, type=Path)
    p.add_argument("--backend", choices=["pg", "sqlite"], default="pg")
    p.add_argument("--pods", type=int, default=1000)
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    db_url = (
        create_pg_database("pb_bench_ab")
        if args.backend == "pg"
        else new_sqlite_url(Path(tempfile.mkdtemp(prefix="pb-bench-ab-")))
    )
    results: dict[str, dict[str, list[float]]] = {}
    try:
        migrate(db_url)

        async def seed() -> Any:
            db = open_db(db_url)
            try:
                return await seed_company(db, "AB", args.pods, with_user=True)
            finally:
                await db.dispose()

        company = asyncio.run(seed())
        data = Path(tempfile.mkdtemp(prefix="pb-bench-ab-")) / "pods.tsv"
        data.write_text(
            "".join(
                f"{p.api_key}\t{p.body_a.decode()}\t{p.body_b.decode()}\n" for p in company.pods
            )
        )
        before_env = {"PYTHONPATH": str(args.before_src.resolve())}
        with run_portal(db_url) as after, run_portal(db_url, env=before_env) as before:
            portals = {"after": after, "before": before}
            auth = {}
            for name, portal in portals.items():
                r = httpx.post(
                    portal.base + "/api/auth/login",
                    json={"email": company.email, "password": company.password},
                    timeout=30,
                )
                r.raise_for_status()
                auth[name] = f"Bearer {r.json()['access_token']}"

            async def prep(mode: str) -> None:
                db = open_db(db_url)
                try:
                    if mode == "changed":
                        await _reset_digests(db)
                    else:
                        await _restore_digests(db, company.pods)
                finally:
                    await db.dispose()

            for _ in range(args.reps):
                for name, portal in portals.items():
                    for mode in ("unchanged", "changed"):
                        asyncio.run(prep(mode))
                        env = {"PB_HB_DATA": str(data), "PB_HB_MODE": mode}
                        w = run_wrk(
                            portal.base + "/api/pod/heartbeat",
                            LUA,
                            duration=args.duration,
                            connections=32,
                            env=env,
                        )
                        assert w.failed == 0, (name, mode, w)
                        key = f"heartbeat {mode} req/s"
                        results.setdefault(key, {}).setdefault(name, []).append(w.rps)
                        key = f"heartbeat {mode} p99 ms"
                        results.setdefault(key, {}).setdefault(name, []).append(w.p99_ms)
                    w = run_wrk(
                        portal.base + "/api/cameras",
                        WRK_REPORT,
                        duration=args.duration,
                        connections=1,
                        path="/api/cameras",
                        auth=auth[name],
                    )
                    assert w.failed == 0, (name, w)
                    key = f"listing {4 * args.pods} cameras p95 ms"
                    results.setdefault(key, {}).setdefault(name, []).append(w.p95_ms)
    finally:
        if args.backend == "pg":
            drop_pg_database(db_url)
    rows = []
    summary = {}
    for key, by in results.items():
        b, a = median(by["before"]), median(by["after"])
        summary[key] = {"before": b, "after": a, "after_vs_before": ratio(a, b)}
        rows.append([key, b, a, ratio(a, b)])
    text = table([f"{args.backend}: metric", "before", "after", "after / before"], rows)
    print(text)
    out = {
        "config": {
            "backend": args.backend,
            "pods": args.pods,
            "reps": args.reps,
            "duration_s": args.duration,
            "before_src": str(args.before_src),
        },
        "results": summary,
        "table": text,
        "targets": [],
    }
    path = _write(f"ab_portal_{args.backend}", out, args.out)
    print(f"wrote {path}")
    return json.loads(path.read_text())


if __name__ == "__main__":
    main()
