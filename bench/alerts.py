"""Benchmark: one alert evaluation pass over a large fleet (docs/alerts.md, "The pass").

World: ``--pods`` pods (default 10,000) x 4 cameras in one database (``--companies`` companies
share them), every pod heartbeating. Measured, each in the same run and interleaved:

* ``quiet``: every pod healthy: the pass reads everything and writes nothing;
* ``onset``: 10 % of the pods stop heartbeating and 5 % of the cameras go into error at once:
  the pass that writes ~2,800 new incidents, opens the 1,000 pods' and queues their 2,000
  notices (run ``--reps`` times, its incidents and notices deleted in between);
* ``steady``: the same world 400 s later, pass after pass (the first opens the cameras'
  incidents and queues their notices; then incidents held, nothing rewritten);
* baseline ``raw reads``: the pass's three SELECTs (rules, pods, cameras) issued alone in a
  read transaction and fetched — the floor of any evaluation that looks at every pod — with
  cyclic GC paused as it is during a pass.

Target (issue 14): a pass over 10,000 pods ≤ 1 s on PostgreSQL.

    .venv/bin/python -m bench.alerts [--backend pg|sqlite|both] [--pods 10000] [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select, update

from bench._common import median, percentile, ratio, report, table
from bench.seed import open_db, seed_company
from platebridge.portal.alerts.models import (
    AlertDelivery,
    AlertEndpoint,
    AlertIncident,
    AlertSettings,
)
from platebridge.portal.alerts.runner import AlertRunner, cyclic_gc_paused
from platebridge.portal.db import Database
from platebridge.portal.models import Camera, Pod, utcnow
from platebridge.portal.settings import PortalSettings
from tests.support.portal import create_pg_database, drop_pg_database, migrate, new_sqlite_url

TARGET_SECONDS = 1.0


async def _raw_reads(db: Database) -> float:
    started = time.perf_counter()
    with cyclic_gc_paused():  # as the pass runs (runner.py: full collections were a third)
        return await _reads(db, started)


async def _reads(db: Database, started: float) -> float:
    async with db.read() as s:
        (await s.execute(select(AlertSettings.company_id, AlertSettings.rules))).all()
        (await s.execute(select(Pod.id, Pod.company_id, Pod.last_heartbeat, Pod.stream_mode))).all()
        (
            await s.execute(select(Camera.pod_id, Camera.camera_id, Camera.status, Camera.media))
        ).all()
    return time.perf_counter() - started


async def _world(db_url: str, args: argparse.Namespace) -> dict[str, Any]:
    db = open_db(db_url)
    settings = PortalSettings(database_url=db_url)
    runner = AlertRunner(db, settings, holders=None)
    out: dict[str, Any] = {}
    try:
        t0 = time.monotonic()
        per_company = args.pods // args.companies
        for i in range(args.companies):
            seeded = await seed_company(db, f"Alert Co {i}", per_company, prefix=f"a{i}pod")
            async with db.write() as s:  # every notice goes to a webhook and one address
                s.add_all(
                    [
                        AlertEndpoint(
                            company_id=seeded.company_id,
                            kind="webhook",
                            name="ops",
                            url="https://hooks.example.com/platebridge",
                            secret="bench-secret",
                            created_at=utcnow(),
                        ),
                        AlertEndpoint(
                            company_id=seeded.company_id,
                            kind="email",
                            name="guards",
                            recipients="guards@example.com",
                            created_at=utcnow(),
                        ),
                    ]
                )
        out["seed_seconds"] = round(time.monotonic() - t0, 1)
        if not db.is_sqlite:
            async with db.engine.connect() as conn:
                await conn.exec_driver_sql("COMMIT")
                await conn.exec_driver_sql("VACUUM ANALYZE")
        now = utcnow()
        raw: list[float] = []
        quiet: list[float] = []
        for _ in range(args.reps):  # interleaved: baseline, then the pass
            raw.append(await _raw_reads(db))
            result = await runner.run_pass(now)
            assert result is not None and result.written == 0, result
            quiet.append(result.seconds)
        pods_watched = result.pods
        cameras_watched = result.cameras
        # the onset: 10 % of pods silent for 20 min, 5 % of the cameras in error
        async with db.read() as s:
            pod_ids = list((await s.execute(select(Pod.id).order_by(Pod.pod_id))).scalars())
            camera_ids = list((await s.execute(select(Camera.id).order_by(Camera.id))).scalars())
        silent, broken = pod_ids[::10], camera_ids[3::20]
        async with db.write() as s:
            for i in range(0, len(silent), 1000):
                await s.execute(
                    update(Pod)
                    .where(Pod.id.in_(silent[i : i + 1000]))
                    .values(last_heartbeat=now - timedelta(minutes=20))
                )
            for i in range(0, len(broken), 1000):
                await s.execute(
                    update(Camera)
                    .where(Camera.id.in_(broken[i : i + 1000]))
                    .values(status="error", error="no stream")
                )
        onsets: list[float] = []
        for rep in range(args.reps):  # the same onset again: its incidents and notices undone
            if rep:
                async with db.write() as s:
                    await s.execute(delete(AlertDelivery))
                    await s.execute(delete(AlertIncident))
            onset = await runner.run_pass(now + timedelta(seconds=1))
            assert onset is not None and onset.opened, onset
            onsets.append(onset.seconds)
        steady: list[float] = []
        opened = 0
        for rep in range(args.reps):
            r = await runner.run_pass(now + timedelta(seconds=400 + rep))
            assert r is not None
            opened += r.opened
            steady.append(r.seconds)
        out.update(
            pods=pods_watched,
            cameras=cameras_watched,
            incidents_written_at_onset=onset.written,
            notices_queued_at_onset=onset.notices,
            opened_in_steady=opened,
            runs={
                "raw reads (baseline)": raw,
                "quiet pass": quiet,
                "onset pass": onsets,
                "steady pass (incidents open)": steady,
            },
        )
        return out
    finally:
        await db.dispose()


def bench_backend(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    if backend == "pg":
        db_url = create_pg_database("pb_bench_alerts")
    else:
        db_url = new_sqlite_url(Path(tempfile.mkdtemp(prefix="pb-bench-alerts-")))
    try:
        migrate(db_url)
        return asyncio.run(_world(db_url, args))
    finally:
        if backend == "pg":
            drop_pg_database(db_url)


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for backend, r in results.items():
        worst = max(max(v) for k, v in r["runs"].items() if "pass" in k)
        out.append(
            {
                "target": f"{backend}: every pass over {r['pods']} pods <= {TARGET_SECONDS} s",
                "value": f"{worst:.3f} s",
                "met": worst <= TARGET_SECONDS,
                "binding": backend == "pg",
            }
        )
    return out


def render(results: dict[str, Any]) -> str:
    rows = []
    for backend, r in results.items():
        base = median(r["runs"]["raw reads (baseline)"])
        for name, values in r["runs"].items():
            ms = [v * 1000 for v in values]
            rows.append(
                [
                    backend,
                    name,
                    f"{median(ms):.0f}",
                    f"{percentile(ms, 95):.0f}",
                    len(ms),
                    f"{ratio(median(values), base):.2f}",
                ]
            )
    head = ["db", "what", "median ms", "p95 ms", "passes", "x raw reads"]
    return table(head, rows)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="alert evaluation pass benchmark")
    p.add_argument("--backend", choices=["pg", "sqlite", "both"], default="both")
    p.add_argument("--pods", type=int, default=10_000, help="pods in all (4 cameras each)")
    p.add_argument("--companies", type=int, default=10)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    if args.smoke:
        args.pods, args.companies, args.reps = 40, 2, 1
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    backends = ["pg", "sqlite"] if args.backend == "both" else [args.backend]
    load_before = os.getloadavg()
    results = {b: bench_backend(b, args) for b in backends}
    config = {k: getattr(args, k) for k in ("pods", "companies", "reps")}
    out = {"config": config, "results": results, "targets": targets(results)}
    out["table"] = render(results)
    notes = [
        f"{backend}: {r['pods']} pods, {r['cameras']} cameras watched; onset pass wrote "
        f"{r['incidents_written_at_onset']} incidents and "
        f"{r['notices_queued_at_onset']} notices; seeded in {r['seed_seconds']} s"
        for backend, r in results.items()
    ]
    return report("alerts", out, load_before, args.out, notes)


if __name__ == "__main__":
    main()
