"""Benchmark: the portal's live fan-out and the live start (issue 12, section 5).

World: a portal process (SQLite), a real POD agent, one GStreamer camera (H.264 High, 1080p25,
~4 Mbit/s: SMPTE bars scrolling 4 px a frame), on loopback. Viewers are Python ``websockets``
clients of the portal's real live route (``WS /api/pod/live/{pod}``, signed in with a bearer
session) reading the binary stream. Two counting TCP forwarders are the POD's boundary: the
portal reaches the POD's HTTP server through one (the POD advertises ``127.0.0.2``, the
forwarder listens there), the POD reaches the portal (heartbeats and the tunnel) through the
other, so "bytes the POD sent" is what crossed them, whichever method carries the video.

For each method (``proxy``, ``tunnel``):

* **fan-out**: 1 viewer, then 11, then 51 (``--viewers``) of the same camera; for each level
  a window of ``--window`` s after every viewer had its start and ``--settle`` s passed: the
  portal process's CPU (``/proc/<pid>/stat`` utime+stime, its children included) per wall
  second in % of one core, the bytes/s the POD sent, the bytes/s each viewer received. Per
  additional viewer: ``(cpu_N - cpu_1) / (N - 1)``. The POD's bytes at N viewers over its bytes
  at 1 viewer, and over what one viewer received in the same window, should be ≈ 1 (one
  upstream per camera per portal process).
* **start** (``--rounds``): a viewer joining a camera nobody watches (``cold``: the portal
  opens the POD's body, the POD's keyframe cache crosses the method) and a second one joining
  while the first watches (``warm``: the portal's own fan-out has the cache). Times from
  opening the socket to the init text, the init segment, the first fragment (the keyframe) and
  the end of the keyframe cache, with the cache's length (media seconds) and size. A ``direct``
  viewer of the POD's own ``/live/{camera}/ws`` is the baseline without the portal.

    .venv/bin/python -m bench.live_fanout [--methods proxy,tunnel] [--viewers 1,11,51]
        [--window 10] [--gop 10] [--rounds 3] [--smoke]

Ratios within one run only: the machine is shared (see ``machine.loadavg`` in the JSON).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from bench._common import median, run_portal, start_pod_agent, table
from bench._common import write_result as _write
from bench._live_clients import Forwarder, LoopThread, Viewer
from platebridge.core.tokens import StreamClaims, sign_stream_token
from tests.support.camera import CameraProfile, TestCamera, camera_available
from tests.support.portal import login, migrate, new_sqlite_url, seed_company, sql
from tests.support.procs import Proc, free_port
from tests.tunnel.support import wait_tunnel

CAMERA = "gate-camera-1"
POD_SIDE = "127.0.0.2"  # the forwarders' address: what crosses it, the POD sent or received
LINGER = 5.0  # the portal keeps an upstream this long after its last viewer (streaming/live.py)
_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` and its children, from ``/proc/<pid>/stat``."""
    pids = [pid]
    with contextlib.suppress(psutil.Error):
        pids += [c.pid for c in psutil.Process(pid).children(recursive=True)]
    total = 0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total / _TICK


class World:
    def __init__(self, base: str, portal_pid: int, db_url: str, seeded: Any, loop: LoopThread):
        self.base, self.portal_pid, self.db_url, self.seeded = base, portal_pid, db_url, seeded
        self.loop = loop
        self.auth = login(base, seeded.email, seeded.password)
        self.pod_port = free_port()
        portal_port = int(base.rsplit(":", 1)[1])
        #: The portal → the POD's HTTP server (proxy); the POD → the portal (heartbeat, tunnel).
        self.to_pod = Forwarder((POD_SIDE, self.pod_port), ("127.0.0.1", self.pod_port))
        self.to_portal = Forwarder((POD_SIDE, portal_port), ("127.0.0.1", portal_port))
        loop.run(self.to_pod.start())
        loop.run(self.to_portal.start())
        self.agent_base = ""

    def pod_sent(self) -> int:
        """Bytes the POD sent: its answers to the portal plus what it sent up to the portal."""
        return self.to_pod.down + self.to_portal.up

    def ws_url(self) -> str:
        base = self.base.replace("http://", "ws://")
        return f"{base}/api/pod/live/{self.seeded.pod_id}?camera_id={CAMERA}"

    def direct_url(self) -> str:
        claims = StreamClaims(
            user_id="bench", pod_id=self.seeded.pod_id, camera_id=CAMERA, exp=int(time.time()) + 600
        )
        token = sign_stream_token(claims, self.seeded.stream_token_secret)
        return f"ws://127.0.0.1:{self.pod_port}/live/{CAMERA}/ws?token={token}"

    def viewer(self, direct: bool = False) -> Viewer:
        v = Viewer(self.direct_url(), {}) if direct else Viewer(self.ws_url(), self.auth)
        self.loop.run(_start(v))
        return v

    def close(self, viewers: list[Viewer]) -> None:
        for v in viewers:
            self.loop.run(v.close())

    def set_mode(self, mode: str) -> None:
        sql(self.db_url, "UPDATE pods SET stream_mode = :m", m=mode)
        if mode == "tunnel":
            wait_tunnel(self.base, self.auth, self.seeded.pod_id, timeout=60)
        else:
            time.sleep(4)  # two heartbeats: the POD has closed its tunnel


async def _start(v: Viewer) -> None:
    v.start()


def _wait(cond: Any, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.1)
    return False


def fanout(world: World, method: str, args: Any) -> list[dict[str, Any]]:
    viewers: list[Viewer] = []
    rows = []
    try:
        for n in args.viewers:
            while len(viewers) < n:
                viewers.append(world.viewer())
                time.sleep(0.02)
            _wait(lambda: all(v.first_at or v.error for v in viewers), 60)
            time.sleep(args.settle)
            cpu0, pod0, t0 = cpu_seconds(world.portal_pid), world.pod_sent(), time.monotonic()
            got0 = [v.bytes for v in viewers]
            time.sleep(args.window)
            cpu1, pod1, t1 = cpu_seconds(world.portal_pid), world.pod_sent(), time.monotonic()
            got = [(v.bytes - b) / (t1 - t0) for v, b in zip(viewers, got0, strict=True)]
            rows.append(
                {
                    "method": method,
                    "viewers": n,
                    "portal_cpu_percent": 100 * (cpu1 - cpu0) / (t1 - t0),
                    "pod_sent_Bps": (pod1 - pod0) / (t1 - t0),
                    "viewer_received_Bps_median": median(got),
                    "viewer_received_Bps_min": min(got),
                    "viewer_errors": sorted({v.error for v in viewers if v.error}),
                    "notices": sum(len(v.notices) for v in viewers),
                    "loadavg": [round(x, 2) for x in os.getloadavg()],
                }
            )
            print(f"  {method} {n} viewers: {rows[-1]}", flush=True)
    finally:
        world.close(viewers)
    base = rows[0]
    for r in rows:
        n = r["viewers"]
        extra = (r["portal_cpu_percent"] - base["portal_cpu_percent"]) / (n - 1) if n > 1 else None
        r["cpu_per_extra_viewer_percent"] = extra
        r["pod_vs_1_viewer_window"] = r["pod_sent_Bps"] / base["pod_sent_Bps"]
        # What the POD sent over what ONE viewer received in the same window: the camera's
        # bitrate moves between windows, this ratio does not (1.0: the POD sent it once).
        r["pod_bytes_ratio"] = r["pod_sent_Bps"] / r["viewer_received_Bps_median"]
    time.sleep(LINGER + 1.5)  # the upstream closes: the next phase starts from nothing open
    return rows


def _figures(v: Viewer, method: str, join: str) -> dict[str, Any]:
    f = v.start_figures() or {"error": v.error or "no fragments"}
    return {"method": method, "join": join, **f}


def start(world: World, method: str, args: Any) -> list[dict[str, Any]]:
    """Cold and warm joins, at phases spread over the keyframe interval."""
    out = []
    for i in range(args.rounds):
        time.sleep(args.gop * i / max(args.rounds, 1) % args.gop)
        direct = method == "direct"
        cold = world.viewer(direct=direct)
        _wait(cold.started, 30)
        time.sleep(args.tail)  # the cache, then some live fragments
        warm = world.viewer(direct=direct)
        _wait(warm.started, 30)
        time.sleep(args.tail)
        world.close([cold, warm])
        out += [_figures(cold, method, "cold"), _figures(warm, method, "warm")]
        for r in out[-2:]:
            print(f"  {method} start: {r}", flush=True)
        if not direct:
            time.sleep(LINGER + 1.5)
    return out


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="portal live fan-out cost and live start")
    p.add_argument("--methods", default="proxy,tunnel")
    p.add_argument("--phases", default="fanout,start", help="fanout, start or both")
    p.add_argument("--viewers", default="1,11,51", help="viewer counts, the first is the base")
    p.add_argument("--window", type=float, default=10.0, help="seconds measured per level")
    p.add_argument("--settle", type=float, default=3.0, help="seconds after the last join")
    p.add_argument("--gop", type=float, default=10.0, help="the camera's keyframe interval")
    p.add_argument("--rounds", type=int, default=3, help="cold+warm joins per method")
    p.add_argument("--tail", type=float, default=4.0, help="seconds each start is watched")
    p.add_argument("--width", type=int, default=1920)
    p.add_argument("--height", type=int, default=1080)
    p.add_argument("--bitrate", type=int, default=4000, help="kbit/s (x264 target)")
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    if args.smoke:
        args.viewers, args.window, args.settle, args.rounds, args.tail = "1,3", 2.0, 1.0, 1, 2.0
        args.gop, args.width, args.height, args.bitrate = 2.0, 640, 360, 600
    args.methods = args.methods.split(",")
    args.phases = args.phases.split(",")
    args.viewers = [int(n) for n in args.viewers.split(",")]
    if args.viewers[0] != 1 or sorted(args.viewers) != args.viewers:
        p.error("--viewers starts at 1 and grows")
    return args


def _agent_config(seeded: Any, portal_port: int, pod_port: int, hls: Path) -> dict[str, Any]:
    return {
        "pod_id": seeded.pod_id,
        "portal_url": f"http://{POD_SIDE}:{portal_port}",
        "api_key": seeded.api_key,
        "stream_token_secret": seeded.stream_token_secret,
        "cameras": [{"camera_id": CAMERA, "name": "Main Gate", "rtsp_url": ""}],
        "listen_host": "127.0.0.1",
        "listen_port": pod_port,
        "advertise_address": POD_SIDE,
        "heartbeat_interval": 2,
        "hls_dir": str(hls),
        "log_level": "warning",
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = _parse(argv)
    if not camera_available():
        raise SystemExit("needs GStreamer's RTSP server and ffmpeg")
    load_before = [round(x, 2) for x in os.getloadavg()]
    tmp = Path(tempfile.mkdtemp(prefix="pb-bench-fanout-"))
    db_url = new_sqlite_url(tmp)
    migrate(db_url)
    seeded = seed_company(db_url)
    profile = CameraProfile(
        h264_profile="high", gop_s=args.gop, pattern="smpte", motion=4, width=args.width,
        height=args.height, bitrate_kbps=args.bitrate,
    )  # fmt: skip
    loop = LoopThread("live-fanout-clients")
    agent: Proc | None = None
    fan: list[dict[str, Any]] = []
    starts: list[dict[str, Any]] = []
    try:
        with run_portal(db_url) as portal, TestCamera(tmp, profile=profile) as cam:
            world = World(portal.base, portal.pid, db_url, seeded, loop)
            config = _agent_config(seeded, int(portal.base.rsplit(":", 1)[1]), world.pod_port, tmp)
            config["cameras"][0]["rtsp_url"] = cam.url
            agent, world.agent_base = start_pod_agent(tmp, config)
            sql(db_url, "UPDATE pods SET stream_mode = 'proxy'")
            time.sleep(min(3 * args.gop, 20) + 2)  # a camera that has been streaming
            if "start" in args.phases:
                starts += start(world, "direct", args)
            for method in args.methods:
                world.set_mode(method)
                if "fanout" in args.phases:
                    fan += fanout(world, method, args)
                if "start" in args.phases:
                    starts += start(world, method, args)
    finally:
        if agent is not None:
            agent.stop(timeout=15)
            agent.kill_group()
        loop.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return _report(args, fan, starts, load_before)


def _report(
    args: Any, fan: list[dict[str, Any]], starts: list[dict[str, Any]], load: list[float]
) -> dict[str, Any]:
    kb = 1000.0
    fan_table = table(
        ["method", "viewers", "portal CPU % core", "per extra viewer %", "POD sent kB/s",
         "each viewer kB/s (median)", "POD sent / one viewer's", "load avg"],
        [[r["method"], r["viewers"], r["portal_cpu_percent"],
          r["cpu_per_extra_viewer_percent"] if r["viewers"] > 1 else "-",
          r["pod_sent_Bps"] / kb, r["viewer_received_Bps_median"] / kb, r["pod_bytes_ratio"],
          r["loadavg"][0]] for r in fan],
    ) if fan else ""  # fmt: skip
    start_table = table(
        ["method", "join", "cache s", "cache MB", "init text ms", "first fragment ms",
         "cache done ms"],
        [[r["method"], r["join"], r.get("cache_media_s", "-"),
          r.get("cache_bytes", 0) / 1e6, r.get("init_text_ms", "-"),
          r.get("first_fragment_ms", "-"), r.get("cache_done_ms", "-")] for r in starts],
    ) if starts else ""  # fmt: skip
    print(fan_table)
    print(start_table)
    targets = []
    for r in fan:
        if r["viewers"] > 1:
            label = f"{r['method']}, 1 → {r['viewers']} viewers"
            extra = r["cpu_per_extra_viewer_percent"]
            targets.append(
                {"target": f"portal CPU per extra viewer <= 1 % of a core ({label})",
                 "value": f"{extra:.2f} %", "met": extra <= 1.0}
            )  # fmt: skip
            ratio = r["pod_bytes_ratio"]
            targets.append(
                {"target": f"POD upstream bytes ≈ 1 x one viewer's ({label})",
                 "value": f"{ratio:.2f} x", "met": ratio <= 1.2}
            )  # fmt: skip
    for t in targets:
        print(f"  {'MET   ' if t['met'] else 'MISSED'} {t['target']}: {t['value']}")
    out = {
        "config": {
            "methods": args.methods,
            "phases": args.phases,
            "viewers": args.viewers,
            "window_s": args.window,
            "camera": f"{args.width}x{args.height}@25 H.264 High, GOP {args.gop:g} s, target "
            f"{args.bitrate} kbit/s, SMPTE bars scrolling 4 px a frame",
            "loadavg_before": load,
        },
        "fanout": fan,
        "start": starts,
        "fanout_table": fan_table,
        "start_table": start_table,
        "targets": targets,
    }
    path = _write("live_fanout", out, args.out)
    print(f"wrote {path}")
    return out


if __name__ == "__main__":
    main()
