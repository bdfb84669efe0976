"""Benchmark 3: the portal's stream proxy against fetching directly and against nginx.

Upstream ("the POD"): nginx serving static files laid out exactly as the POD agent serves them
(``/stream`` = the playlist, ``/stream/{camera}/seg_N.ts`` = MPEG-TS segments of a fixed size;
the agent's token check is not part of this stand-in). Three ways to fetch, same upstream:

* ``direct``: the viewer fetches from the upstream itself;
* ``portal``: through ``platebridge-portal serve`` (``/api/pod/proxy-stream/...``, stream token
  in the query, as hls.js does) — one portal process;
* ``nginx``: through a second nginx (one worker) doing ``proxy_pass`` with upstream keep-alive:
  the anchor. Target: portal >= 0.5 x nginx at 50 concurrent viewers.

Segments: ``--viewers`` wrk connections each fetching the 1 MB segment back to back. Playlist:
one connection (unloaded latency): portal overhead over direct p50 <= 2 ms. Memory: the portal's
peak RSS at 50 viewers for 256 KB, 1 MB and 4 MB segments must not grow with the size.

    .venv/bin/python -m bench.proxy_relay [--viewers 50] [--duration 6] [--smoke]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench._common import WRK_REPORT, ProcWatch, median, ratio, run_portal, run_wrk, table
from bench._common import write_result as _write
from bench.nginx import proxy_config, run_nginx, static_pod_config
from bench.profiling import Profiler
from tests.support.portal import (
    create_pg_database,
    drop_pg_database,
    migrate,
    new_sqlite_url,
    pg_reachable,
    seed_company,
)

CAMERA = "cam-1"
SIZES = {"256KB": 256 * 1024, "1MB": 1024 * 1024, "4MB": 4 * 1024 * 1024}


def write_pod_files(root: Path) -> None:
    seg_dir = root / "segments"
    seg_dir.mkdir(parents=True)
    for label, size in SIZES.items():
        (seg_dir / f"seg_{label}.ts").write_bytes(os.urandom(size))
    start = datetime.now(UTC) - timedelta(seconds=6)
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:1", "#EXT-X-MEDIA-SEQUENCE:100"]
    lines.append("#EXT-X-INDEPENDENT-SEGMENTS")
    for i in range(6):
        pdt = (start + timedelta(seconds=i)).isoformat(timespec="milliseconds")
        lines += [f"#EXT-X-PROGRAM-DATE-TIME:{pdt.replace('+00:00', 'Z')}", "#EXTINF:1.000000,"]
        lines.append(f"stream/{CAMERA}/seg_1MB.ts?token=abc")
    (root / "index.m3u8").write_text("\n".join(lines) + "\n")


def _stream_token(base: str, email: str, password: str, pod_id: str) -> str:
    r = httpx.post(f"{base}/api/auth/login", json={"email": email, "password": password})
    r.raise_for_status()
    auth = {"Authorization": f"Bearer {r.json()['access_token']}"}
    r = httpx.post(
        f"{base}/api/pod/stream-token", json={"pod_id": pod_id, "camera_id": CAMERA}, headers=auth
    )
    r.raise_for_status()
    token: str = r.json()["token"]
    return token


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description="proxy relay benchmark")
    p.add_argument("--viewers", type=int, default=50)
    p.add_argument("--duration", type=float, default=6.0)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--backend", choices=["pg", "sqlite"], default="pg")
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--profile", action="store_true", help="py-spy the portal (first rep)")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    if args.smoke:
        args.viewers, args.duration, args.reps = 4, 0.5, 1
    if args.backend == "pg" and pg_reachable() is not None:
        args.backend = "sqlite"

    root = Path(tempfile.mkdtemp(prefix="pb-bench-relay-"))
    write_pod_files(root)
    db_url = create_pg_database("pb_bench_relay") if args.backend == "pg" else new_sqlite_url()
    seg_runs: dict[str, list[Any]] = {"direct": [], "portal": [], "nginx": []}
    pl_runs: dict[str, list[Any]] = {"direct": [], "portal": [], "nginx": []}
    mem: dict[str, dict[str, float]] = {}
    profiles: dict[str, Any] = {}
    try:
        migrate(db_url)
        seeded = seed_company(db_url)
        with contextlib.ExitStack() as stack:
            pod_base, _ = stack.enter_context(run_nginx(static_pod_config(root, CAMERA)))
            pod_port = int(pod_base.rsplit(":", 1)[1])
            nginx_base, nginx_proc = stack.enter_context(run_nginx(proxy_config(pod_port)))
            portal = stack.enter_context(
                run_portal(db_url, env={"PLATEBRIDGE_STREAM_TOKEN_TTL": "3600"})
            )
            hb = {
                "pod_id": seeded.pod_id,
                "ip_address": "127.0.0.1",
                "stream_port": pod_port,
                "status": "online",
                "cameras": [{"camera_id": CAMERA, "name": "Camera 1"}],
            }
            httpx.post(
                f"{portal.base}/api/pod/heartbeat", json=hb, headers=seeded.pod_auth
            ).raise_for_status()
            token = _stream_token(portal.base, seeded.email, seeded.password, seeded.pod_id)
            q = f"?camera_id={CAMERA}&token={token}"
            paths = {
                "direct": (pod_base, "/stream/cam-1/seg_{}.ts?token=x", "/stream?token=x"),
                "nginx": (nginx_base, "/stream/cam-1/seg_{}.ts?token=x", "/stream?token=x"),
                "portal": (
                    portal.base,
                    f"/api/pod/proxy-stream/{seeded.pod_id}/segment/seg_{{}}.ts{q}",
                    f"/api/pod/proxy-stream/{seeded.pod_id}{q}",
                ),
            }
            # sanity: the portal relays the bytes and rewrites the playlist
            for way, (base, seg, pl) in paths.items():
                r = httpx.get(base + seg.format("1MB"), timeout=30)
                assert r.status_code == 200 and len(r.content) == SIZES["1MB"], (way, r.text[:200])
                r = httpx.get(base + pl, timeout=30)
                assert r.status_code == 200 and r.text.startswith("#EXTM3U"), (way, r.text[:200])
            # memory vs segment size, first (fresh portal), smallest first: Python rarely
            # returns memory to the OS, so a portal that buffered segments would show a
            # higher peak with every larger size.
            for label in SIZES:
                path = (
                    f"/api/pod/proxy-stream/{seeded.pod_id}/segment/seg_{label}.ts"
                    f"?camera_id={CAMERA}&token={token}"
                )
                before = ProcWatch({"p": portal.pid}).start().stop()["p"].rss_peak_mb
                watch = ProcWatch({"portal": portal.pid}, interval=0.1).start()
                w = run_wrk(
                    portal.base,
                    WRK_REPORT,
                    duration=args.duration,
                    connections=args.viewers,
                    path=path,
                )
                u = watch.stop()["portal"]
                mem[label] = {
                    "rss_before_mb": before,
                    "peak_rss_mb": u.rss_peak_mb,
                    "mb_per_s": w.mb_per_s,
                    "errors": w.failed,
                }
            watched = {"portal": portal.pid, "nginx": nginx_proc.pid}
            for _ in range(args.reps):
                for way, (base, seg, _pl) in paths.items():
                    prof = None
                    if args.profile and way == "portal" and not profiles:
                        prof = Profiler(portal.pid, max(1.0, args.duration - 1)).start()
                    watch = ProcWatch(watched).start()
                    w = run_wrk(
                        base,
                        WRK_REPORT,
                        duration=args.duration,
                        connections=args.viewers,
                        path=seg.format("1MB"),
                    )
                    seg_runs[way].append((w, watch.stop()))
                    if prof is not None:
                        profiles["portal segments"] = prof.result()
                for way, (base, _seg, pl) in paths.items():
                    prof = None
                    if args.profile and way == "portal" and "portal playlist" not in profiles:
                        prof = Profiler(portal.pid, max(1.0, args.duration - 1)).start()
                    w = run_wrk(base, WRK_REPORT, duration=args.duration, connections=1, path=pl)
                    if prof is not None:
                        profiles["portal playlist"] = prof.result()
                    pl_runs[way].append((w, None))
    finally:
        if args.backend == "pg":
            drop_pg_database(db_url)
        import shutil

        shutil.rmtree(root, ignore_errors=True)

    def seg_summary(way: str) -> dict[str, Any]:
        runs = seg_runs[way]
        return {
            "mb_per_s": median([w.mb_per_s for w, _ in runs]),
            "req_per_s": median([w.rps for w, _ in runs]),
            "p50_ms": median([w.p50_ms for w, _ in runs]),
            "p99_ms": median([w.p99_ms for w, _ in runs]),
            "errors": sum(w.failed for w, _ in runs),
            "portal_cpu_percent": median([u["portal"].cpu_percent for _, u in runs]),
            "portal_rss_peak_mb": max(u["portal"].rss_peak_mb for _, u in runs),
            "nginx_proxy_cpu_percent": median([u["nginx"].cpu_percent for _, u in runs]),
        }

    segs = {way: seg_summary(way) for way in seg_runs}
    pls = {
        way: {
            "p50_ms": median([w.p50_ms for w, _ in runs]),
            "p99_ms": median([w.p99_ms for w, _ in runs]),
            "req_per_s": median([w.rps for w, _ in runs]),
            "errors": sum(w.failed for w, _ in runs),
        }
        for way, runs in pl_runs.items()
    }
    vs_nginx = ratio(segs["portal"]["mb_per_s"], segs["nginx"]["mb_per_s"])
    overhead = pls["portal"]["p50_ms"] - pls["direct"]["p50_ms"]
    mem_ratio = ratio(mem["4MB"]["peak_rss_mb"], mem["256KB"]["peak_rss_mb"])
    rows = []
    for way in ("direct", "nginx", "portal"):
        s, pl = segs[way], pls[way]
        cpu = s["portal_cpu_percent"] if way == "portal" else s["nginx_proxy_cpu_percent"]
        rows.append(
            [
                way,
                s["mb_per_s"],
                ratio(s["mb_per_s"], segs["nginx"]["mb_per_s"]),
                s["p50_ms"],
                s["p99_ms"],
                pl["p50_ms"],
                pl["p50_ms"] - pls["direct"]["p50_ms"],
                "-" if way == "direct" else f"{cpu:.0f}%",
                s["errors"] + pl["errors"],
            ]
        )
    head = ["fetch", "MB/s (1 MB seg)", "x nginx", "seg p50 ms", "seg p99 ms", "playlist p50 ms"]
    text = table([*head, "+ over direct", "proxy CPU", "err"], rows)
    mem_rows = [
        [k, v["rss_before_mb"], v["peak_rss_mb"], v["mb_per_s"], v["errors"]]
        for k, v in mem.items()
    ]
    text += "\n\n" + table(
        ["segment size (ascending)", "portal RSS before MB", "peak RSS MB", "MB/s", "err"], mem_rows
    )
    print(text)
    tgts = [
        {
            "target": f"proxy throughput >= 0.5 x nginx at {args.viewers} viewers",
            "value": f"{vs_nginx:.2f} x",
            "met": vs_nginx >= 0.5,
        },
        {
            "target": "playlist overhead over direct p50 <= 2 ms",
            "value": f"{overhead:.2f} ms",
            "met": overhead <= 2,
        },
        {
            "target": "portal memory flat vs segment size (peak RSS 4 MB / 256 KB <= 1.25)",
            "value": f"{mem_ratio:.2f} x",
            "met": mem_ratio <= 1.25,
        },
    ]
    for t in tgts:
        print(f"  {'MET   ' if t['met'] else 'MISSED'} {t['target']}: {t['value']}")
    out = {
        "config": {
            "viewers": args.viewers,
            "duration_s": args.duration,
            "reps": args.reps,
            "backend": args.backend,
            "upstream": "nginx static files laid out as the POD agent serves them",
            "anchor": "nginx 1 worker, proxy_pass, upstream keepalive 64",
        },
        "segments": segs,
        "playlist": pls,
        "memory": mem,
        "profile": profiles,
        "table": text,
        "targets": tgts,
    }
    path = _write("proxy_relay", out, args.out)
    print(f"wrote {path}")
    return json.loads(path.read_text())


if __name__ == "__main__":
    main()
