"""Benchmark 2: the paginated camera listing, ``GET /api/cameras`` (docs/portal.md "Pagination").

World: the viewer's company holds ``--pods`` pods x 4 cameras (default 1,000 → 4,000 cameras);
``--companies`` companies of that size fill the database (default 25 → 100,000 cameras). The
portal is a real process; requests are sequential (wrk, 1 connection): latency, not throughput.

Measured in one run, each against the same run's baselines (``GET /health``: the portal's
floor for a JSON request with one trivial query on this machine at this moment;
``GET /api/auth/me``: the same with the session lookup every listing request makes too):

* the first page (100 cameras), a page in the middle (cursor after 2,000 cameras) and the last;
* text search ``q`` (a narrow one, ``pod 123``: 4 hits, and a broad one, ``camera 3``: the first
  page of 1,000 hits);
* ``GET /api/pods`` (first page) and ``limit=500`` (the largest page) for reference;
* Chromium (``--browser``): the cameras page of that company, navigation start → first
  contentful paint, DOMContentLoaded, and "responsive" (a task queued after the first
  animation frame after DOMContentLoaded runs: the main thread is free), against the login
  page (same run) as the browser's floor.

    .venv/bin/python -m bench.listing [--backend pg|sqlite|both] [--pods 1000]
        [--companies 25] [--browser] [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from bench._common import WRK_REPORT, ProcWatch, median, ratio, run_portal, run_wrk, table
from bench._common import write_result as _write
from bench.seed import CompanySeed, open_db, seed_company
from tests.support.portal import create_pg_database, drop_pg_database, migrate, new_sqlite_url

#: name → (path, target p95 ms or None)
TARGETS = {"page": 20.0, "search": 30.0, "browser": 1000.0}


async def _seed(db_url: str, n_pods: int, companies: int) -> CompanySeed:
    db = open_db(db_url)
    try:
        viewer = await seed_company(db, "Viewer Co", n_pods, with_user=True, prefix="vpod")
        for i in range(1, companies):
            await seed_company(db, f"Other Co {i}", n_pods, prefix=f"o{i}pod")
        if not db.is_sqlite:
            async with db.engine.connect() as conn:
                # a settled database, as autovacuum leaves it: statistics and the visibility
                # map (index-only scans) — a freshly bulk-loaded table has neither
                await conn.exec_driver_sql("COMMIT")
                await conn.exec_driver_sql("VACUUM ANALYZE")
        return viewer
    finally:
        await db.dispose()


def _cursor_after(base: str, auth: str, pages: int, path: str = "/api/cameras") -> str | None:
    """The cursor after ``pages`` pages of 100 (walked with the API)."""
    cursor = None
    with httpx.Client(base_url=base, headers={"Authorization": auth}, timeout=30) as c:
        for _ in range(pages):
            params = {"cursor": cursor} if cursor else {}
            body = c.get(path, params=params).json()
            cursor = body["next_cursor"]
            if cursor is None:
                break
    return cursor


def _measure(base: str, path: str, auth: str, args: argparse.Namespace, pid: int) -> dict[str, Any]:
    runs = []
    for _ in range(args.reps):
        watch = ProcWatch({"portal": pid}).start()
        w = run_wrk(
            base + path, WRK_REPORT, duration=args.duration, connections=1, path=path, auth=auth
        )
        runs.append((w, watch.stop()["portal"]))
    return {
        "path": path,
        "requests": sum(w.requests for w, _ in runs),
        "p50_ms": median([w.p50_ms for w, _ in runs]),
        "p95_ms": median([w.p95_ms for w, _ in runs]),
        "p99_ms": median([w.p99_ms for w, _ in runs]),
        "errors": sum(w.failed for w, _ in runs),
        "portal_cpu_pct": median([u.cpu_percent for _, u in runs]),
    }


def _browser(base: str, email: str, password: str, opens: int) -> dict[str, Any]:
    """Chromium: the cameras page vs the login page (same run), ``opens`` fresh loads each."""
    from playwright.sync_api import sync_playwright

    from bench.browser import CHROMIUM, CHROMIUM_ARGS

    probe = """() => new Promise(resolve => {
        const nav = performance.getEntriesByType('navigation')[0];
        const fcp = performance.getEntriesByName('first-contentful-paint')[0];
        requestAnimationFrame(() => setTimeout(() => resolve({
            dcl: nav.domContentLoadedEventEnd, responsive: performance.now(),
            fcp: fcp ? fcp.startTime : null,
            cards: document.querySelectorAll('.camera-card').length}), 0));
    })"""
    out: dict[str, list[dict[str, Any]]] = {"login": [], "cameras": []}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            ctx = browser.new_context()
            page = ctx.new_page()
            page.goto(base + "/login")
            page.fill("#email", email)
            page.fill("#password", password)
            page.click("button[type=submit]")
            page.wait_for_url("**/cameras**")
            anon = browser.new_context()
            anon_page = anon.new_page()
            for _ in range(opens):
                anon_page.goto(base + "/login", wait_until="domcontentloaded")
                out["login"].append(anon_page.evaluate(probe))
                page.goto(base + "/cameras", wait_until="domcontentloaded")
                page.wait_for_selector(".camera-card")
                out["cameras"].append(page.evaluate(probe))
        finally:
            browser.close()

    def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "responsive_ms": median([r["responsive"] for r in rows]),
            "responsive_max_ms": max(r["responsive"] for r in rows),
            "dcl_ms": median([r["dcl"] for r in rows]),
            "fcp_ms": median([r["fcp"] or 0 for r in rows]),
            "cards": rows[-1]["cards"],
        }

    return {name: summary(rows) for name, rows in out.items()}


def bench_backend(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    if backend == "pg":
        db_url = create_pg_database("pb_bench_list")
    else:
        db_url = new_sqlite_url(Path(tempfile.mkdtemp(prefix="pb-bench-list-")))
    try:
        migrate(db_url)
        t0 = time.monotonic()
        viewer = asyncio.run(_seed(db_url, args.pods, args.companies))
        out: dict[str, Any] = {"seed_seconds": round(time.monotonic() - t0, 1)}
        out["cameras_in_company"] = 4 * args.pods
        out["cameras_in_db"] = 4 * args.pods * args.companies
        # Alert passes off: this world's pods never heartbeat (they go offline, then frozen,
        # mid-run), and a pass over 100,000 cameras every 30 s is load of its own, measured by
        # bench/alerts.py — not part of what a listing request costs.
        with run_portal(db_url, {"PLATEBRIDGE_ALERTS_ENABLED": "false"}) as portal:
            r = httpx.post(
                portal.base + "/api/auth/login",
                json={"email": viewer.email, "password": viewer.password},
                timeout=30,
            )
            r.raise_for_status()
            auth = f"Bearer {r.json()['access_token']}"
            first = httpx.get(portal.base + "/api/cameras", headers={"Authorization": auth})
            first.raise_for_status()
            assert first.json()["total"] == 4 * args.pods, first.json()["total"]
            out["page_bytes"] = len(first.content)
            pages = max(1, args.pods * 4 // 100)
            mid = _cursor_after(portal.base, auth, pages // 2)
            last = _cursor_after(portal.base, auth, pages - 1)
            narrow = quote(f"pod {min(123, args.pods - 1)}")
            paths = {
                "health (baseline)": "/health",
                "me (auth baseline)": "/api/auth/me",
                "page 1": "/api/cameras",
                "page middle": f"/api/cameras?cursor={mid}" if mid else "/api/cameras",
                "page last": f"/api/cameras?cursor={last}" if last else "/api/cameras",
                "search narrow": f"/api/cameras?q={narrow}",
                "search broad": "/api/cameras?q=camera%203",
                "pods page 1": "/api/pods",
                "limit=500": "/api/cameras?limit=500",
            }
            hits = httpx.get(portal.base + paths["search narrow"], headers={"Authorization": auth})
            out["search_narrow_hits"] = hits.json()["total"]
            broad = httpx.get(portal.base + paths["search broad"], headers={"Authorization": auth})
            out["search_broad_hits"] = broad.json()["total"]
            out["runs"] = {
                name: _measure(portal.base, path, auth, args, portal.pid)
                for name, path in paths.items()
            }
            if args.browser:
                out["browser"] = _browser(portal.base, viewer.email, viewer.password, args.opens)
        return out
    finally:
        if backend == "pg":
            drop_pg_database(db_url)


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for backend, r in results.items():
        for name, m in r["runs"].items():
            limit = TARGETS["search"] if name.startswith("search") else TARGETS["page"]
            if name.startswith(("page", "search")):
                out.append(
                    {
                        "target": f"{backend} {name} p95 <= {limit:.0f} ms",
                        "value": f"{m['p95_ms']:.1f} ms",
                        "met": m["p95_ms"] <= limit,
                    }
                )
        if "browser" in r:
            v = r["browser"]["cameras"]["responsive_max_ms"]
            out.append(
                {
                    "target": f"{backend} cameras page responsive in Chromium <= 1 s (worst open)",
                    "value": f"{v:.0f} ms",
                    "met": v <= TARGETS["browser"],
                }
            )
    return out


def render(results: dict[str, Any]) -> str:
    rows = []
    for backend, r in results.items():
        base = r["runs"]["health (baseline)"]["p95_ms"]
        for name, m in r["runs"].items():
            x_base = ratio(m["p95_ms"], base)
            rows.append([backend, name, m["p50_ms"], m["p95_ms"], m["p99_ms"], x_base])
            rows[-1] += [m["requests"], m["errors"]]
    head = ["db", "request", "p50 ms", "p95 ms", "p99 ms", "p95 x health", "requests", "err"]
    text = table(head, rows)
    for backend, r in results.items():
        if "browser" in r:
            b = r["browser"]
            text += f"\n{backend} Chromium (median of opens, ms): " + ", ".join(
                f"{page}: responsive {v['responsive_ms']:.0f} (max {v['responsive_max_ms']:.0f})"
                f" DCL {v['dcl_ms']:.0f} FCP {v['fcp_ms']:.0f} cards {v['cards']}"
                for page, v in b.items()
            )
    return text


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="camera listing benchmark")
    p.add_argument("--backend", choices=["pg", "sqlite", "both"], default="both")
    p.add_argument("--pods", type=int, default=1000, help="pods per company (4 cameras each)")
    p.add_argument("--companies", type=int, default=25, help="companies of that size in the db")
    p.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--browser", action="store_true", help="also time the page in Chromium")
    p.add_argument("--opens", type=int, default=5, help="Chromium page loads")
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    if args.smoke:
        args.pods, args.companies, args.duration, args.reps, args.opens = 30, 2, 1.0, 1, 1
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    backends = ["pg", "sqlite"] if args.backend == "both" else [args.backend]
    load_before = os.getloadavg()
    results = {b: bench_backend(b, args) for b in backends}
    config = {k: getattr(args, k) for k in ("pods", "companies", "reps", "duration", "opens")}
    out = {"config": config, "results": results, "targets": targets(results)}
    out["load_average_before_after"] = [load_before, os.getloadavg()]
    out["table"] = render(results)
    print(out["table"])
    print(f"load average before {load_before}, after {os.getloadavg()}")
    for t in out["targets"]:
        print(f"  {'MET   ' if t['met'] else 'MISSED'} {t['target']}: {t['value']}")
    path = _write("listing", out, args.out)
    print(f"wrote {path}")
    return json.loads(path.read_text())


if __name__ == "__main__":
    main()
