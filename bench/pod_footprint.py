"""Benchmark 5: POD footprint — one agent with 4 cameras (720p25 test patterns).

Starts 4 RTSP test cameras (GStreamer x264: they *encode*, which a real IP camera does in
hardware, so their CPU is reported separately and is not the POD's cost), a portal (SQLite) for
the heartbeats, and ``platebridge-pod run`` with the 4 cameras. After every camera is active,
it samples for ``--seconds`` (default 60): the agent's own CPU and RSS, each of its ffmpeg
children, each camera. One viewer per camera polls the playlist every second and downloads
each new segment directly from the agent (what the portal's proxy does for a viewer).

Baseline (same run, same window): a bare ``ffmpeg -c copy`` RTSP→HLS remux of camera 1 started
by this script, not by the agent — the agent's ffmpeg should cost the same.

    .venv/bin/python -m bench.pod_footprint [--seconds 60] [--smoke]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench._common import ProcWatch, ratio, run_portal, start_pod_agent, table
from bench._common import write_result as _write
from platebridge.core.tokens import StreamClaims, sign_stream_token
from tests.support.camera import TestCamera, camera_available
from tests.support.portal import migrate, new_sqlite_url, seed_company
from tests.support.procs import Proc, free_port

CAMERAS = 4


class BenchCamera(TestCamera):
    """The test camera at a realistic bitrate for 720p25."""

    bitrate = 1500

    def argv(self) -> list[str]:
        argv = super().argv()
        i = argv.index("--bitrate")
        argv[i + 1] = str(self.bitrate)
        return argv


def _viewer(
    base: str, tokens: dict[str, str], stop: threading.Event, stats: dict[str, int]
) -> None:
    seen: set[str] = set()
    with httpx.Client(base_url=base, timeout=5) as client:
        while not stop.wait(1.0):
            for tok in tokens.values():
                with contextlib.suppress(httpx.HTTPError):
                    r = client.get("/stream", params={"token": tok})
                    if r.status_code != 200:
                        continue
                    segs = [ln for ln in r.text.splitlines() if ln and not ln.startswith("#")]
                    if segs and segs[-1] not in seen:
                        seen.add(segs[-1])
                        s = client.get("/" + segs[-1].lstrip("/"))
                        stats["segments"] += 1
                        stats["bytes"] += len(s.content)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description="POD footprint benchmark")
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--cameras", type=int, default=CAMERAS)
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=720)
    p.add_argument("--fps", type=int, default=25)
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    if args.smoke:
        args.seconds, args.width, args.height, args.fps, args.cameras = 3.0, 320, 240, 10, 2
    if not camera_available():
        raise SystemExit("needs /usr/bin/python3 with GStreamer's RTSP server, and ffmpeg")

    tmp = Path(tempfile.mkdtemp(prefix="pb-bench-pod-"))
    cams: list[BenchCamera] = []
    agent: Proc | None = None
    bare: Proc | None = None
    db_url = new_sqlite_url(tmp)
    migrate(db_url)
    seeded = seed_company(db_url)
    try:
        for _ in range(args.cameras):
            cam = BenchCamera(
                tmp, pattern="ball", width=args.width, height=args.height, fps=args.fps
            )
            cam.start()
            cams.append(cam)
        with run_portal(db_url) as portal:
            port = free_port()
            config = {
                "pod_id": seeded.pod_id,
                "portal_url": portal.base,
                "api_key": seeded.api_key,
                "stream_token_secret": seeded.stream_token_secret,
                "cameras": [
                    {"camera_id": f"cam-{i + 1}", "name": f"Camera {i + 1}", "rtsp_url": c.url}
                    for i, c in enumerate(cams)
                ],
                "listen_host": "127.0.0.1",
                "listen_port": port,
                "advertise_address": "127.0.0.1",
                "heartbeat_interval": 60,
                "hls_dir": str(tmp / "hls"),
                "log_level": "warning",
            }
            agent, base = start_pod_agent(tmp, config)
            # baseline: the same remux, started by hand
            bare_dir = tmp / "bare"
            bare_dir.mkdir()
            bare = Proc(
                [
                    shutil.which("ffmpeg") or "ffmpeg",
                    *("-hide_banner", "-loglevel", "error", "-rtsp_transport", "tcp"),
                    *("-i", cams[0].url, "-map", "0:v:0", "-c", "copy", "-f", "hls"),
                    *("-hls_time", "1", "-hls_list_size", "6"),
                    *("-hls_flags", "delete_segments+program_date_time+temp_file"),
                    str(bare_dir / "index.m3u8"),
                ],
                log_path=tmp / "bare-ffmpeg.log",
            )
            time.sleep(3 if not args.smoke else 1)  # let ffmpeg and the viewers settle
            children = [
                c
                for c in psutil.Process(agent.pid).children(recursive=True)
                if "ffmpeg" in c.name()
            ]
            ffmpeg_pids: dict[str, int] = {}
            for child in children:
                m = re.search(r"/(cam-\d+)/", " ".join(child.cmdline()))
                ffmpeg_pids[f"ffmpeg {m.group(1) if m else child.pid}"] = child.pid
            pids: dict[str, int] = {"agent": agent.pid}
            pids.update(dict(sorted(ffmpeg_pids.items())))
            pids["baseline: bare ffmpeg remux"] = bare.pid
            for i, c in enumerate(cams):
                assert c.proc is not None
                pids[f"camera {i + 1} (encoder, not POD)"] = c.proc.pid
            watch = ProcWatch(pids, interval=0.5)
            agent_only = ProcWatch({"agent": agent.pid}, interval=0.5, include_children=False)
            exp = int(time.time()) + 3600
            tokens = {
                f"cam-{i + 1}": sign_stream_token(
                    StreamClaims("bench", seeded.pod_id, f"cam-{i + 1}", exp),
                    seeded.stream_token_secret,
                )
                for i in range(args.cameras)
            }
            stop = threading.Event()
            stats = {"segments": 0, "bytes": 0}
            viewer = threading.Thread(target=_viewer, args=(base, tokens, stop, stats))
            viewer.start()
            watch.start()
            agent_only.start()
            time.sleep(args.seconds)
            usage = watch.stop()
            own = agent_only.stop()["agent"]
            stop.set()
            viewer.join(timeout=10)
    finally:
        if agent is not None:
            agent.stop(timeout=15)
            agent.kill_group()
        if bare is not None:
            bare.stop()
            bare.kill_group()
        for c in cams:
            c.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    base_cpu = usage["baseline: bare ffmpeg remux"].cpu_percent
    procs = {}
    for name, u in usage.items():
        procs[name] = {
            "cpu_percent": u.cpu_percent,
            "rss_peak_mb": u.rss_peak_mb,
            "exited_during_window": u.exited,
            "vs_bare_ffmpeg": ratio(u.cpu_percent, base_cpu) if name.startswith("ffmpeg") else None,
        }
    procs["agent"] = {
        "cpu_percent": own.cpu_percent,
        "rss_peak_mb": own.rss_peak_mb,
        "exited_during_window": own.exited,
        "vs_bare_ffmpeg": None,
    }
    ff = [v for k, v in procs.items() if k.startswith("ffmpeg") and not v["exited_during_window"]]
    worst_ff = max((v["cpu_percent"] for v in ff), default=float("nan"))
    rows = [
        [
            n + (" (restarted in window)" if v["exited_during_window"] else ""),
            v["cpu_percent"],
            v["rss_peak_mb"],
            v["vs_bare_ffmpeg"] or "-",
        ]
        for n, v in procs.items()
    ]
    text = table(["process", "CPU % of a core", "peak RSS MB", "x bare ffmpeg"], rows)
    print(text)
    tgts = [
        {
            "target": "POD agent <= 2 % of a core",
            "value": f"{own.cpu_percent:.2f} %",
            "met": own.cpu_percent <= 2,
        },
        {
            "target": "POD agent <= 80 MB RSS",
            "value": f"{own.rss_peak_mb:.0f} MB",
            "met": own.rss_peak_mb <= 80,
        },
        {
            "target": "ffmpeg <= 3 % of a core per camera",
            "value": f"worst {worst_ff:.2f} %",
            "met": worst_ff <= 3 and len(ff) == args.cameras,
        },
    ]
    for t in tgts:
        print(f"  {'MET   ' if t['met'] else 'MISSED'} {t['target']}: {t['value']}")
    out = {
        "config": {
            "cameras": args.cameras,
            "video": f"{args.width}x{args.height}@{args.fps} H.264, "
            f"{BenchCamera.bitrate} kbit/s, 1 s keyframes",
            "seconds": args.seconds,
            "viewers": "1 per camera, direct from the agent, polling every 1 s",
        },
        "results": procs,
        "viewer": stats,
        "table": text,
        "targets": tgts,
    }
    path = _write("pod_footprint", out, args.out)
    print(f"wrote {path}")
    return json.loads(path.read_text())


if __name__ == "__main__":
    main()
