"""Benchmark: what the tunnel (Method 4) costs against the plain proxy (Method 2), same run.

World: one portal process (SQLite), a real POD agent with ``tunnel: true`` and an RTSP test
camera, both on loopback, ``PLATEBRIDGE_POD_NETWORKS=127.0.0.0/8`` so the proxy can reach the
POD too. A 1 MiB MPEG-TS segment file is planted in the camera's HLS directory (the agent
serves any ``seg_N.ts`` there), so segment throughput is not limited by the camera's bitrate.

Interleaved rounds, switching the pod's ``stream_mode`` between ``proxy`` and ``tunnel``
(``PATCH /api/pods/{id}``):

* latency: sequential playlist fetches through the portal (unloaded), p50 / p95;
* throughput: ``--viewers`` clients fetching the 1 MiB segment back to back for
  ``--duration`` seconds, MiB/s.

    .venv/bin/python -m bench.tunnel [--rounds 3] [--viewers 4] [--duration 4] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support.portal import login, new_sqlite_url
from tests.support.procs import wait_until
from tests.tunnel.support import stream_token, tunnel_world, wait_tunnel

SEGMENT = "seg_1.ts"
SEGMENT_BYTES = 1024 * 1024
RESULTS = Path(__file__).resolve().parent / "results"


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def latency(url: str, n: int) -> list[float]:
    out = []
    with httpx.Client(timeout=10) as client:
        client.get(url).raise_for_status()  # warm the connection
        for _ in range(n):
            t = time.perf_counter()
            r = client.get(url)
            out.append((time.perf_counter() - t) * 1000)
            r.raise_for_status()
    return out


def throughput(url: str, viewers: int, duration: float) -> float:
    done = [0] * viewers
    errors: list[str] = []
    deadline = time.monotonic() + duration

    def viewer(i: int) -> None:
        with httpx.Client(timeout=15) as client:
            while time.monotonic() < deadline:
                with client.stream("GET", url) as r:
                    if r.status_code != 200:
                        errors.append(str(r.status_code))
                        return
                    for chunk in r.iter_raw():
                        done[i] += len(chunk)

    threads = [threading.Thread(target=viewer, args=(i,)) for i in range(viewers)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"segment fetch failed: {errors[:3]}")
    return sum(done) / (time.monotonic() - started) / (1024 * 1024)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--viewers", type=int, default=4)
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--requests", type=int, default=60, help="playlist fetches per round")
    parser.add_argument("--smoke", action="store_true", help="one short round")
    args = parser.parse_args()
    if args.smoke:
        args.rounds, args.duration, args.requests = 1, 1.5, 15

    tmp = Path(tempfile.mkdtemp(prefix="pb-bench-tunnel-"))
    db_url = new_sqlite_url(tmp)
    env = {"PLATEBRIDGE_POD_NETWORKS": "127.0.0.0/8"}
    results: dict[str, dict[str, list[float]]] = {
        m: {"latency_ms": [], "mib_s": []} for m in ("proxy", "tunnel")
    }
    with tunnel_world(tmp, db_url, env, mode=None) as world:
        base, tenant, config = world.base, world.tenant, world.config
        auth = login(base, tenant.email, tenant.password)
        wait_tunnel(base, auth, tenant.pod_id, timeout=40)
        token = stream_token(base, tenant)
        cam_dir = Path(config["hls_dir"]) / "gate-camera-1"
        wait_until(cam_dir.is_dir, timeout=20, what="camera directory")
        (cam_dir / SEGMENT).write_bytes(os.urandom(SEGMENT_BYTES))
        q = f"camera_id=gate-camera-1&token={token}"
        playlist = f"{base}/api/pod/proxy-stream/{tenant.pod_id}?{q}"
        segment = f"{base}/api/pod/proxy-stream/{tenant.pod_id}/segment/{SEGMENT}?{q}"
        for _ in range(args.rounds):
            for mode in ("proxy", "tunnel"):
                r = httpx.patch(
                    f"{base}/api/pods/{tenant.pod_id}",
                    headers=auth,
                    json={"stream_mode": mode},
                )
                r.raise_for_status()
                results[mode]["latency_ms"] += latency(playlist, args.requests)
                results[mode]["mib_s"].append(throughput(segment, args.viewers, args.duration))

    summary: dict[str, Any] = {}
    for mode, data in results.items():
        summary[mode] = {
            "playlist_p50_ms": round(_pct(data["latency_ms"], 50), 2),
            "playlist_p95_ms": round(_pct(data["latency_ms"], 95), 2),
            "segment_mib_s": round(statistics.median(data["mib_s"]), 1),
        }
    p, t = summary["proxy"], summary["tunnel"]
    summary["added_latency_p50_ms"] = round(t["playlist_p50_ms"] - p["playlist_p50_ms"], 2)
    summary["throughput_ratio"] = round(t["segment_mib_s"] / p["segment_mib_s"], 2)
    summary["setup"] = {
        "viewers": args.viewers,
        "duration_s": args.duration,
        "rounds": args.rounds,
        "segment_bytes": SEGMENT_BYTES,
        "cpus": os.cpu_count(),
    }
    print(f"{'method':8} {'playlist p50 ms':>16} {'p95 ms':>8} {'segment MiB/s':>14}")
    for mode in ("proxy", "tunnel"):
        s = summary[mode]
        print(
            f"{mode:8} {s['playlist_p50_ms']:>16} {s['playlist_p95_ms']:>8}"
            f" {s['segment_mib_s']:>14}"
        )
    print(
        f"tunnel adds {summary['added_latency_p50_ms']} ms (p50) per request; "
        f"throughput {summary['throughput_ratio']} x proxy"
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "tunnel.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
