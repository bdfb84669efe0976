"""Heartbeat latency at fixed offered rates on PostgreSQL (issue 15: p99 < 50 ms at 2,000/s).

``bench/heartbeat.py`` measures throughput (wrk, closed loop: its p99 is the queue of a
saturated server). This one offers *constant* rates with the open-loop generator of
``bench/openloop.py`` and reports p50 / p99 per rate, for 1 and 2 portal processes on the
same database, each figure beside two same-run baselines at the same rate:

* ``health``: ``GET /health`` on the same portal(s) — the generator + HTTP + ASGI floor;
* ``raw``: the fast path's one UPDATE on a plain asyncpg pool (``RawPg``) — the database floor.

Unchanged heartbeats only (the steady state the target is about): 2,000 pods x 4 cameras,
each pod's variant-A body, pods rotating. With ``--workers 2`` two ``serve`` processes run on
two ports and the generator's connections alternate between them (what a load balancer in
front of N workers does); each process keeps at most 8 + 40 PostgreSQL connections and the
unchanged path uses only its 8.

    .venv/bin/python -m bench.heartbeat_rate [--rates 1000,2000,2500] [--workers 1,2]
        [--variant before=/tmp/before/src --variant after=src]   # A/B, interleaved
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from bench import openloop
from bench._common import ProcWatch, run_portal, table
from bench._common import write_result as _write
from bench.heartbeat import RawPg, _restore_digests
from bench.seed import PodSeed, open_db, seed_company
from tests.support.portal import create_pg_database, drop_pg_database, migrate


def _requests(host: str, pods: list[PodSeed]) -> list[bytes]:
    return [
        openloop.http_request(
            "POST",
            host,
            "/api/pod/heartbeat",
            {"Authorization": f"Bearer {p.api_key}", "Content-Type": "application/json"},
            p.body_a,
        )
        for p in pods
    ]


def _measure(
    kind: str,
    targets: list[tuple[str, int]],
    reqs: list[bytes],
    rate: float,
    args: argparse.Namespace,
    pids: dict[str, int],
) -> dict[str, Any]:
    watch = ProcWatch(pids).start()
    r = openloop.run(
        openloop.http_open_loop(
            targets, reqs, rate=rate, duration=args.duration, connections=args.connections
        )
    )
    usage = watch.stop()
    cpu = {name: round(u.cpu_percent, 1) for name, u in usage.items()}
    return {"kind": kind, **r.row(), "cpu": cpu, "load": os.getloadavg()[0]}


def _raw(db_url: str, pods: list[PodSeed], rate: float, args: argparse.Namespace) -> dict[str, Any]:
    async def main() -> openloop.RateResult:
        dsn = db_url.replace("postgresql+asyncpg://", "postgresql://")
        pool = await asyncpg.create_pool(dsn, min_size=8, max_size=8)
        try:
            rp = RawPg(pool, pods)

            async def op(i: int) -> bool:
                await rp.op(pods[i % len(pods)], False, "unchanged")
                return True

            return await openloop.run_open_loop([op] * args.connections, rate, args.duration)
        finally:
            await pool.close()

    r = openloop.run(main())
    return {"kind": "raw", **r.row(), "cpu": {}, "load": os.getloadavg()[0]}


def bench(args: argparse.Namespace) -> dict[str, Any]:
    db_url = create_pg_database("pb_bench_hb_rate")
    rows: list[dict[str, Any]] = []
    try:
        migrate(db_url)

        async def seed() -> list[PodSeed]:
            db = open_db(db_url)
            try:
                return (await seed_company(db, "Bench HB rate", args.pods)).pods
            finally:
                await db.dispose()

        async def restore() -> None:
            db = open_db(db_url)
            try:
                await _restore_digests(db, pods)
            finally:
                await db.dispose()

        pods = asyncio.run(seed())
        host = "127.0.0.1"
        hb_reqs = _requests(host, pods)
        health = [openloop.http_request("GET", host, "/health", {}, b"")]
        for workers in args.workers:
            with contextlib.ExitStack() as stack:
                fleets = {
                    name: _start(stack, db_url, workers, src, args)
                    for name, src in args.variants.items()
                }
                asyncio.run(restore())
                for targets, pids in fleets.values():  # warm-up: pools, statements, caches
                    _measure("warmup", targets, hb_reqs, 500, _short(args), pids)
                for rate in args.rates:
                    for _rep in range(args.reps):
                        for name, (targets, pids) in fleets.items():  # interleaved
                            for kind in ("health", "heartbeat"):
                                reqs = health if kind == "health" else hb_reqs
                                row = _measure(kind, targets, reqs, rate, args, pids)
                                rows.append({"variant": name, "workers": workers, **row})
                                print(json.dumps(rows[-1]), flush=True)
                        if workers == args.workers[0]:
                            raw = _raw(db_url, pods, rate, args)
                            rows.append({"variant": "-", "workers": 0, **raw})
                            print(json.dumps(rows[-1]), flush=True)
                        time.sleep(1)
    finally:
        drop_pg_database(db_url)
    return {"rows": rows, "args": {k: str(v) for k, v in vars(args).items()}}


def _start(
    stack: contextlib.ExitStack,
    db_url: str,
    workers: int,
    src: str | None,
    args: argparse.Namespace,
) -> tuple[list[tuple[str, int]], dict[str, int]]:
    """``workers`` portal processes (of the source tree ``src``, default this checkout) on
    ports of their own: (host, port) each and their pids."""
    env = {} if src is None else {"PYTHONPATH": src}
    portals = [
        stack.enter_context(run_portal(db_url, env=env, extra_args=args.serve_args))
        for _ in range(workers)
    ]
    targets = []
    for p in portals:
        u = urlsplit(p.base)
        assert u.hostname is not None and u.port is not None
        targets.append((u.hostname, u.port))
    return targets, {f"portal{k}": p.pid for k, p in enumerate(portals)}


def _variants(specs: list[str]) -> dict[str, str | None]:
    """``NAME=SRC_DIR`` (a ``src`` directory, e.g. ``git archive`` of another commit) each;
    without any, this checkout alone as ``current``."""
    out: dict[str, str | None] = {}
    for spec in specs:
        name, _, src = spec.partition("=")
        out[name] = src or None
    return out or {"current": None}


def _short(args: argparse.Namespace) -> argparse.Namespace:
    return argparse.Namespace(**{**vars(args), "duration": 2.0})


def report(result: dict[str, Any]) -> str:
    headers = ["variant", "workers", "kind", "offered/s", "achieved/s", "p50 ms", "p99 ms"]
    headers += ["max ms", "err", "portal CPU %", "load"]
    rows = [
        [
            r["variant"],
            r["workers"] or "-",
            r["kind"],
            r["offered"],
            r["achieved"],
            r["p50_ms"],
            r["p99_ms"],
            r["max_ms"],
            r["errors"],
            " + ".join(str(v) for v in r["cpu"].values()) or "-",
            round(r["load"], 2),
        ]
        for r in result["rows"]
    ]
    return table(headers, rows)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="heartbeat p50/p99 at fixed offered rates (PG)")
    p.add_argument("--pods", type=int, default=2000)
    p.add_argument("--rates", type=lambda s: [float(x) for x in s.split(",")], default=[2000.0])
    p.add_argument("--workers", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2])
    p.add_argument("--connections", type=int, default=64, help="client connections (lanes)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    p.add_argument("--reps", type=int, default=1)
    p.add_argument("--out", type=Path, default=None, help="results directory")
    p.add_argument("--serve-arg", dest="serve_args", action="append", default=[])
    p.add_argument(
        "--variant",
        dest="variant_specs",
        action="append",
        default=[],
        help="NAME=SRC_DIR: also run the portal of another source tree (A/B, interleaved)",
    )
    args = p.parse_args(argv)
    args.variants = _variants(args.variant_specs)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    result = bench(args)
    print(report(result))
    _write("heartbeat_rate", result, args.out)


if __name__ == "__main__":
    main()
