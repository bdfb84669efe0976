"""Benchmark 1: heartbeat ingestion on PostgreSQL and SQLite.

N simulated PODs with 4 cameras each. For each backend and each kind of heartbeat

* ``unchanged``: the same content as last time (the fast path: only ``last_heartbeat``);
* ``changed``: every heartbeat of a POD alternates camera 4 between ``active`` and ``error``
  (the transactional path: pod row + 4-camera upsert + inactive sweep);

three ways of doing the same database writes are measured, interleaved, ``--reps`` times:

* ``http``: ``wrk`` (C, one thread) against one ``platebridge-portal serve`` process;
* ``no-http``: the portal's own domain functions (parse, digest, SQLAlchemy) called in-process;
* ``raw``: the same SQL statements issued directly with the driver (asyncpg / sqlite3) — the
  ceiling. The ratio ``http / raw`` is the figure the target is about.

    .venv/bin/python -m bench.heartbeat [--backend pg|sqlite|both] [--pods 2000] [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from bench._common import BENCH, ProcWatch, median, percentile, ratio, run_portal, run_wrk, table
from bench._common import write_result as _write
from bench.profiling import Profiler
from bench.seed import PodSeed, heartbeat_doc, open_db, seed_company
from platebridge.portal.db import Database
from platebridge.portal.models import utcnow
from platebridge.portal.services import heartbeat as hb
from platebridge.portal.services.heartbeat_body import (
    heartbeat_digest,
    parse_heartbeat,
    stored_rtsp_url,
    stream_url,
)
from tests.support.portal import create_pg_database, drop_pg_database, migrate, new_sqlite_url

LUA = BENCH / "wrk_heartbeat.lua"


@dataclass
class Run:
    way: str
    mode: str
    rps: float
    p50_ms: float
    p99_ms: float
    ops: int
    errors: int = 0
    portal_cpu: float = float("nan")


# --- in-process drivers --------------------------------------------------------------------------


Op = Callable[[PodSeed, bool], Awaitable[None]]  # (pod, use variant b?)


async def drive(pods: list[PodSeed], mode: str, op: Op, conc: int, duration: float) -> Run:
    """``conc`` workers, each owning every conc-th pod, until ``duration`` elapses."""
    lat: list[float] = []
    errors = 0
    deadline = time.perf_counter() + duration
    max_ops = 2_000_000

    async def worker(mine: list[PodSeed]) -> None:
        nonlocal errors
        flips = [False] * len(mine)
        i = 0
        while time.perf_counter() < deadline and len(lat) < max_ops:
            k = i % len(mine)
            i += 1
            use_b = False
            if mode == "changed":
                flips[k] = not flips[k]
                use_b = flips[k]
            t0 = time.perf_counter()
            try:
                await op(mine[k], use_b)
            except Exception:
                errors += 1
                if errors > 100:
                    raise
            lat.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    groups = [pods[w::conc] for w in range(min(conc, len(pods)))]
    await asyncio.gather(*(worker(g) for g in groups))
    wall = time.perf_counter() - t0
    return Run(
        "",
        mode,
        len(lat) / wall,
        percentile(lat, 50) * 1000,
        percentile(lat, 99) * 1000,
        len(lat),
        errors,
    )


def domain_op(db: Database) -> Op:
    """Exactly what the route does after reading the body, minus HTTP."""

    async def op(p: PodSeed, use_b: bool) -> None:
        req = parse_heartbeat(p.body_b if use_b else p.body_a)
        digest = heartbeat_digest(req)
        now = utcnow()
        if digest is None or not await hb.fast_heartbeat(db, p.key_hash, req.pod_id, digest, now):
            async with db.write() as s:
                await hb.slow_heartbeat(s, p.key_hash, req, digest, now, None)

    return op


_CAM_COLS = "id, pod_id, camera_id, name, stream_url, status, position, error, rtsp_url, "
_CAM_COLS += "created_at, updated_at"
_CAM_SET = ", ".join(
    f"{c} = excluded.{c}"
    for c in ("name", "stream_url", "status", "position", "error", "rtsp_url", "updated_at")
)


def _cams(p: PodSeed, use_b: bool) -> list[dict[str, Any]]:
    doc = heartbeat_doc(p.pod_id, p.ip, "b" if use_b else "a")
    out = []
    for c in doc["cameras"]:
        out.append(
            {
                "camera_id": c["camera_id"],
                "name": c["name"],
                "status": c.get("status", "active"),
                "position": c["position"],
                "error": c.get("error"),
                "rtsp_url": stored_rtsp_url(c["rtsp_url"]),
            }
        )
    return out


class RawPg:
    """The portal's statements, hand-written, over a plain asyncpg pool."""

    FAST = (
        "UPDATE pods SET last_heartbeat = $1 WHERE pods.id = (SELECT api_keys.pod_id FROM "
        "api_keys WHERE api_keys.key_hash = $2 AND api_keys.kind = 'pod' AND "
        "api_keys.revoked_at IS NULL) AND pods.pod_id = $3 AND pods.heartbeat_digest = $4 "
        "RETURNING pods.id"
    )

    def __init__(self, pool: asyncpg.Pool, pods: list[PodSeed]) -> None:
        self.pool = pool
        self.cams = {(p.pod_id, b): _cams(p, b) for p in pods for b in (False, True)}
        values = ", ".join(
            "(" + ", ".join(f"${2 + 9 * r + c}" for c in range(9)) + ", $1, $1)" for r in range(4)
        )
        # $1 now, then per row: id, pod_id, camera_id, name, stream_url, status, position,
        # error, rtsp_url
        self.upsert = (
            f"INSERT INTO cameras ({_CAM_COLS}) VALUES {values} "
            f"ON CONFLICT (pod_id, camera_id) DO UPDATE SET {_CAM_SET}"
        )

    async def op(self, p: PodSeed, use_b: bool, mode: str) -> None:
        now = datetime.now(UTC)
        digest = p.digest_b if use_b else p.digest_a
        async with self.pool.acquire() as conn:
            if mode == "unchanged":
                row = await conn.fetchrow(self.FAST, now, p.key_hash, p.pod_id, digest)
                assert row is not None, "fast path missed"
                return
            async with conn.transaction():
                await conn.fetchrow("SELECT * FROM api_keys WHERE key_hash = $1", p.key_hash)
                await conn.fetchrow("SELECT * FROM pods WHERE id = $1", p.pod_uuid)
                await conn.execute(
                    "UPDATE pods SET last_heartbeat = $2, status = 'online', ip_address = $3, "
                    "stream_port = 8000, heartbeat_digest = $4, firmware_version = '1.0.0' "
                    "WHERE id = $1",
                    p.pod_uuid,
                    now,
                    p.ip,
                    digest,
                )
                url = stream_url(p.ip, 8000)
                args: list[Any] = [now]
                for c in self.cams[(p.pod_id, use_b)]:
                    args += [uuid.uuid4(), p.pod_uuid, c["camera_id"], c["name"], url]
                    args += [c["status"], c["position"], c["error"], c["rtsp_url"]]
                await conn.execute(self.upsert, *args)
                await conn.execute(
                    "UPDATE cameras SET status = 'inactive', updated_at = $1 WHERE pod_id = $2 "
                    "AND camera_id <> ALL($3::varchar[]) AND status <> 'inactive'",
                    now,
                    p.pod_uuid,
                    [c["camera_id"] for c in self.cams[(p.pod_id, use_b)]],
                )


def raw_sqlite(path: str, pods: list[PodSeed], mode: str, duration: float) -> Run:
    """The portal's statements over one stdlib sqlite3 connection (SQLite has one writer, so
    serial is its ceiling). Same pragmas as the portal."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute("PRAGMA synchronous=NORMAL")
    cams = {(p.pod_id, b): _cams(p, b) for p in pods for b in (False, True)}
    flips = [False] * len(pods)
    values = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * 4)
    upsert = (
        f"INSERT INTO cameras ({_CAM_COLS}) VALUES {values} "
        f"ON CONFLICT (pod_id, camera_id) DO UPDATE SET {_CAM_SET}"
    )
    fast = (
        "UPDATE pods SET last_heartbeat = ? WHERE pods.id = (SELECT api_keys.pod_id FROM "
        "api_keys WHERE api_keys.key_hash = ? AND api_keys.kind = 'pod' AND "
        "api_keys.revoked_at IS NULL) AND pods.pod_id = ? AND pods.heartbeat_digest = ? "
        "RETURNING pods.id"
    )
    lat: list[float] = []
    deadline = time.perf_counter() + duration
    t_start = time.perf_counter()
    i = 0
    try:
        while time.perf_counter() < deadline and i < 2_000_000:
            k = i % len(pods)
            i += 1
            p = pods[k]
            use_b = False
            if mode == "changed":
                flips[k] = not flips[k]
                use_b = flips[k]
            t0 = time.perf_counter()
            now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
            digest = p.digest_b if use_b else p.digest_a
            pod_hex = p.pod_uuid.hex
            conn.execute("BEGIN IMMEDIATE")
            if mode == "unchanged":
                rows = conn.execute(fast, (now, p.key_hash, p.pod_id, digest)).fetchall()
                assert rows, "fast path missed"
            else:
                conn.execute("SELECT * FROM api_keys WHERE key_hash = ?", (p.key_hash,)).fetchall()
                conn.execute("SELECT * FROM pods WHERE id = ?", (pod_hex,)).fetchall()
                conn.execute(
                    "UPDATE pods SET last_heartbeat = ?, status = 'online', ip_address = ?, "
                    "stream_port = 8000, heartbeat_digest = ?, firmware_version = '1.0.0' "
                    "WHERE id = ?",
                    (now, p.ip, digest, pod_hex),
                )
                url = stream_url(p.ip, 8000)
                args: list[Any] = []
                for c in cams[(p.pod_id, use_b)]:
                    args += [uuid.uuid4().hex, pod_hex, c["camera_id"], c["name"], url]
                    args += [c["status"], c["position"], c["error"], c["rtsp_url"], now, now]
                conn.execute(upsert, args)
                ids = [c["camera_id"] for c in cams[(p.pod_id, use_b)]]
                conn.execute(
                    "UPDATE cameras SET status = 'inactive', updated_at = ? WHERE pod_id = ? "
                    f"AND camera_id NOT IN ({', '.join('?' * len(ids))}) "
                    "AND status != 'inactive'",
                    (now, pod_hex, *ids),
                )
            conn.execute("COMMIT")
            lat.append(time.perf_counter() - t0)
    finally:
        conn.close()
    wall = time.perf_counter() - t_start
    return Run(
        "raw", mode, len(lat) / wall, percentile(lat, 50) * 1000, percentile(lat, 99) * 1000, i
    )


# --- the benchmark -------------------------------------------------------------------------------


async def _reset_digests(db: Database) -> None:
    """Before a ``changed`` phase: no stored digest, so every heartbeat takes the slow path."""
    from sqlalchemy import update

    from platebridge.portal.models import Pod

    async with db.write() as s:
        await s.execute(update(Pod).values(heartbeat_digest=None))


async def _restore_digests(db: Database, pods: list[PodSeed]) -> None:
    """Before an ``unchanged`` phase: every pod as after a variant-A heartbeat."""
    from sqlalchemy import bindparam, update

    from platebridge.portal.models import Pod

    stmt = (
        update(Pod)
        .where(Pod.id == bindparam("b_id"))
        .values(heartbeat_digest=bindparam("b_digest"))
        .execution_options(synchronize_session=False)
    )
    async with db.write() as s:
        conn = await s.connection()  # Core executemany, not an ORM bulk update
        await conn.execute(stmt, [{"b_id": p.pod_uuid, "b_digest": p.digest_a} for p in pods])


def bench_backend(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    if backend == "pg":
        db_url = create_pg_database("pb_bench_hb")
    else:
        db_url = new_sqlite_url(Path(tempfile.mkdtemp(prefix="pb-bench-hb-")))
    runs: list[Run] = []
    try:
        migrate(db_url)

        async def seed() -> list[PodSeed]:
            db = open_db(db_url)
            try:
                return (await seed_company(db, "Bench HB", args.pods)).pods
            finally:
                await db.dispose()

        pods = asyncio.run(seed())
        data = Path(tempfile.mkdtemp(prefix="pb-bench-hb-")) / "pods.tsv"
        data.write_text(
            "".join(f"{p.api_key}\t{p.body_a.decode()}\t{p.body_b.decode()}\n" for p in pods)
        )
        with run_portal(db_url, extra_args=args.serve_args) as portal:
            for mode in ("unchanged", "changed"):
                for _rep in range(args.reps):
                    runs += _one_rep(backend, db_url, portal, pods, data, mode, args)
    finally:
        if backend == "pg":
            drop_pg_database(db_url)
    out = summarise(backend, runs, args)
    if args.profile:
        out["profile"] = args.profiles.get(backend, {})
    return out


def _one_rep(
    backend: str,
    db_url: str,
    portal: Any,
    pods: list[PodSeed],
    data: Path,
    mode: str,
    args: argparse.Namespace,
) -> list[Run]:
    out: list[Run] = []

    async def prepare() -> None:
        db = open_db(db_url)
        try:
            if mode == "changed":
                await _reset_digests(db)
            else:
                await _restore_digests(db, pods)
        finally:
            await db.dispose()

    # http
    asyncio.run(prepare())
    env = {"PB_HB_DATA": str(data), "PB_HB_MODE": mode, "PB_WRK_THREADS": "1"}
    url = portal.base + "/api/pod/heartbeat"
    # warm-up: fill the portal's connection pool and statement caches (not recorded)
    if not args.smoke:
        run_wrk(url, LUA, duration=1, connections=args.connections, env=env)
    if mode == "changed":
        asyncio.run(prepare())
    prof = None
    if args.profile and mode not in args.profiles.setdefault(backend, {}):
        prof = Profiler(portal.pid, max(1.0, args.duration - 1)).start()
    watch = ProcWatch({"portal": portal.pid}).start()
    w = run_wrk(
        url,
        LUA,
        duration=args.duration,
        connections=args.connections,
        env=env,
    )
    usage = watch.stop()["portal"]
    if prof is not None:
        args.profiles[backend][mode] = prof.result()
    errors = w.non_2xx + sum(w.errors.values())
    out.append(Run("http", mode, w.rps, w.p50_ms, w.p99_ms, w.requests, errors, usage.cpu_percent))

    # no-http (portal domain functions in-process)
    asyncio.run(prepare())

    async def domain() -> Run:
        db = open_db(db_url)
        try:
            return await drive(pods, mode, domain_op(db), args.connections, args.duration)
        finally:
            await db.dispose()

    r = asyncio.run(domain())
    r.way = "no-http"
    out.append(r)

    # raw driver
    asyncio.run(prepare())
    if backend == "pg":

        async def raw() -> Run:
            dsn = db_url.replace("postgresql+asyncpg://", "postgresql://")
            pool = await asyncpg.create_pool(
                dsn, min_size=args.connections, max_size=args.connections
            )
            try:
                rp = RawPg(pool, pods)

                async def op(p: PodSeed, b: bool) -> None:
                    await rp.op(p, b, mode)

                return await drive(pods, mode, op, args.connections, args.duration)
            finally:
                await pool.close()

        r = asyncio.run(raw())
        r.way = "raw"
    else:
        r = raw_sqlite(db_url.removeprefix("sqlite:///"), pods, mode, args.duration)
    out.append(r)
    return out


def summarise(backend: str, runs: list[Run], args: argparse.Namespace) -> dict[str, Any]:
    rows: dict[str, dict[str, Any]] = {}
    for mode in ("unchanged", "changed"):
        raw_rps = median([r.rps for r in runs if r.mode == mode and r.way == "raw"])
        for way in ("http", "no-http", "raw"):
            rs = [r for r in runs if r.mode == mode and r.way == way]
            rows[f"{mode}/{way}"] = {
                "backend": backend,
                "mode": mode,
                "way": way,
                "rps": median([r.rps for r in rs]),
                "p50_ms": median([r.p50_ms for r in rs]),
                "p99_ms": median([r.p99_ms for r in rs]),
                "vs_raw": ratio(median([r.rps for r in rs]), raw_rps),
                "errors": sum(r.errors for r in rs),
                "portal_cpu_percent": median([r.portal_cpu for r in rs]) if way == "http" else None,
                "runs": [r.rps for r in rs],
            }
    return {"rows": rows}


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for backend, need in (("pg", 2000.0), ("sqlite", 1000.0)):
        if backend not in results:
            continue
        rows = results[backend]["rows"]
        u, c = rows["unchanged/http"], rows["changed/http"]
        goal = f">= {need:,.0f}/s" + (", p99 < 50 ms" if backend == "pg" else "")
        met = u["rps"] >= need and (backend != "pg" or u["p99_ms"] < 50)
        out.append(
            {
                "target": f"heartbeat {backend} unchanged {goal}",
                "value": f"{u['rps']:,.0f}/s p99 {u['p99_ms']:.1f} ms",
                "met": met,
            }
        )
        out.append(
            {
                "target": f"heartbeat {backend} changed {goal}",
                "value": f"{c['rps']:,.0f}/s p99 {c['p99_ms']:.1f} ms",
                "met": c["rps"] >= need and (backend != "pg" or c["p99_ms"] < 50),
            }
        )
        for mode in ("unchanged", "changed"):
            r = rows[f"{mode}/http"]
            out.append(
                {
                    "target": f"heartbeat {backend} {mode} >= 0.5 x raw ceiling",
                    "value": f"{r['vs_raw']:.2f} x",
                    "met": r["vs_raw"] >= 0.5,
                }
            )
    return out


def render(results: dict[str, Any]) -> str:
    rows = []
    for backend in ("pg", "sqlite"):
        if backend not in results:
            continue
        for r in results[backend]["rows"].values():
            cpu = r["portal_cpu_percent"]
            rows.append(
                [
                    backend,
                    r["mode"],
                    r["way"],
                    r["rps"],
                    r["p50_ms"],
                    r["p99_ms"],
                    r["vs_raw"],
                    "-" if cpu is None else f"{cpu:.0f}%",
                    r["errors"],
                ]
            )
    head = ["db", "heartbeat", "way", "req/s", "p50 ms", "p99 ms", "x raw", "portal CPU", "err"]
    return table(head, rows)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="heartbeat ingestion benchmark")
    p.add_argument("--backend", choices=["pg", "sqlite", "both"], default="both")
    p.add_argument("--pods", type=int, default=2000)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--duration", type=float, default=8.0, help="seconds per measurement")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--smoke", action="store_true", help="tiny sizes (test suite)")
    p.add_argument("--out", type=Path, default=None, help="results directory")
    p.add_argument("--profile", action="store_true", help="py-spy the portal (first rep)")
    p.add_argument("--serve-arg", dest="serve_args", action="append", default=[])
    args = p.parse_args(argv)
    args.profiles = {}
    if args.smoke:
        args.pods, args.connections, args.duration, args.reps = 16, 4, 1.0, 1
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    backends = ["pg", "sqlite"] if args.backend == "both" else [args.backend]
    results: dict[str, Any] = {}
    for backend in backends:
        results[backend] = bench_backend(backend, args)
    config = {
        "pods": args.pods,
        "cameras_per_pod": 4,
        "connections": args.connections,
        "duration_s": args.duration,
        "reps": args.reps,
        "wrk_threads": 1,
    }
    out = {"config": config, "results": results, "targets": targets(results)}
    text = render(results)
    out["table"] = text
    print(text)
    for backend, res in results.items():
        for mode, prof in res.get("profile", {}).items():
            print(f"profile {backend}/{mode} http: {json.dumps(prof, indent=1)}")
    for t in out["targets"]:
        print(f"  {'MET   ' if t['met'] else 'MISSED'} {t['target']}: {t['value']}")
    path = _write("heartbeat", out, args.out)
    print(f"wrote {path}")
    return json.loads(path.read_text())


if __name__ == "__main__":
    main()
