"""Benchmark: glass-to-glass latency of the live view in Chromium (issue 12).

The test camera burns the wall clock into each picture at capture (``--clock``,
tools/clock_code.py); the page reads it back from the decoded frame (bench/clock_reader.js,
canvas ``drawImage`` of the ``<video>``) and subtracts it from its own clock — same machine,
same clock, no playlist timestamps. For each keyframe interval, method and player:

* time to first frame: navigation start → the first picture whose clock reads;
* glass-to-glass every ``--interval`` s for ``--seconds`` s: median, p95, max;
* frozen: the longest run of samples showing the same picture (playback stopped), and how often
  the POD reported the camera not ``active`` (e.g. its stall watchdog restarting ffmpeg).

World: a portal (SQLite), a real POD agent, one camera per keyframe interval (H.264 High,
1080p25, 4 Mbit/s — SMPTE bars scrolling 4 px a frame reach it —, no scene cuts), the portal's
live page ``/cameras/{pod}/{camera}`` signed in beforehand. Methods: ``proxy`` (through the
portal), ``tunnel`` (the POD's outbound tunnel), ``direct`` (browser → POD).

    .venv/bin/python -m bench.live_latency [--gops 1,4,10] [--methods proxy,tunnel]
        [--players hls,mse] [--seconds 30] [--smoke]

Adding a player is one ``PLAYERS`` entry: the page query that selects it and a JS check that
it is the one playing.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench._common import BENCH, median, percentile, run_portal, start_pod_agent, table
from bench._common import write_result as _write
from tests.support.camera import CameraProfile, TestCamera, camera_available
from tests.support.portal import login, migrate, new_sqlite_url, seed_company, sql
from tests.support.procs import Proc, free_port
from tests.tunnel.support import wait_tunnel
from tests.web.conftest import CHROMIUM_ARGS, find_chromium

#: The tests' browser and its flags (one place: tests/web/conftest.py).
CHROMIUM = find_chromium()
CAMERA = "gate-camera-1"
READER = BENCH / "clock_reader.js"
WS_TIMING = BENCH / "ws_timing.js"
#: Messages closer together than this (ms) belong to the keyframe cache's burst; live fragments
#: come one per frame (40 ms at 25 fps).
BURST_GAP_MS = 25.0
#: A picture less than this old (ms) counts as live (the 1.0 s glass-to-glass target).
LIVE_MS = 1000.0


@dataclass(frozen=True)
class PlayerSpec:
    query: str  # appended to the live page's path to select this player
    is_playing: str  # JS expression: true when this player is the one playing
    description: str


_ROOT = "document.querySelector('.player')"
PLAYERS: dict[str, PlayerSpec] = {
    # static/live.js marks the player it runs in `data-player` and honours `?player=hls`;
    # a page from before live.js has only player.js (hls.js, no data-player).
    "hls": PlayerSpec(
        query="?player=hls",
        is_playing=f"{_ROOT}.dataset.player === 'hls' || "
        f"(!{_ROOT}.dataset.player && !!({_ROOT}.platebridgePlayer || {{}}).hls)",
        description="hls.js (static/player.js)",
    ),
    "mse": PlayerSpec(
        query="",
        is_playing=f"{_ROOT}.dataset.player === 'mse'",
        description="fMP4 over WebSocket into MSE (static/live.js)",
    ),
}


def _off_loop(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """asyncio.run helpers must run off Playwright's event-loop thread."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn, *args, **kwargs).result(timeout=60)


def _frozen(samples: list[dict[str, Any]]) -> float:
    """The longest time (s) the page showed the same picture."""
    longest, since = 0.0, None
    for prev, cur in itertools.pairwise(samples):
        if cur["stamp"] == prev["stamp"]:
            since = prev["at"] if since is None else since
            longest = max(longest, (cur["at"] - since) / 1000)
        else:
            since = None
    return longest


def _bitrate_kbps(hls_dir: Path) -> float:
    """The camera's real bitrate from the POD's HLS segments on disk (size / EXTINF)."""
    playlist = hls_dir / CAMERA / "index.m3u8"
    try:
        text = playlist.read_text()
    except OSError:
        return float("nan")
    seconds, size, duration = 0.0, 0, None
    for line in text.splitlines():
        if line.startswith("#EXTINF:"):
            duration = float(line[len("#EXTINF:") :].split(",")[0])
        elif line and not line.startswith("#") and duration is not None:
            path = playlist.parent / line.split("?")[0].rsplit("/", 1)[-1]
            if path.exists():
                seconds, size = seconds + duration, size + path.stat().st_size
            duration = None
    return size * 8 / 1000 / seconds if seconds else float("nan")


def _view(
    browser: Any, base: str, creds: tuple[str, str], path: str, player: str, args: Any, agent: str
) -> dict[str, Any]:
    spec = PLAYERS[player]
    ctx = browser.new_context(base_url=base)
    try:
        ctx.request.post("/api/auth/login", data={"email": creds[0], "password": creds[1]})
        page = ctx.new_page()
        page.add_init_script(path=str(READER))
        page.add_init_script(path=str(WS_TIMING))
        page.add_init_script(f"PlateBridgeClock.start({args.interval * 1000:.0f}, '.player video')")
        page.goto(path + spec.query)
        try:
            page.wait_for_function(
                "() => window.__pbClock.firstFrameAt !== null", timeout=args.first_frame * 1000
            )
        except Exception:  # no picture is a result, not a crash
            return {"first_frame": False, "state": page.evaluate(_STATE_JS)}
        not_active, end = 0, time.monotonic() + args.seconds
        while time.monotonic() < end:
            page.wait_for_timeout(1000)
            cams = httpx.get(agent + "/health", timeout=5).json()["cameras"]
            not_active += sum(1 for c in cams if c["status"] != "active")
        clock = page.evaluate("() => window.__pbClock")
        lat = [s["latency"] for s in clock["samples"]]
        return {
            "first_frame": True,
            "ttff_ms": clock["firstFrameAt"],
            "live_ms": _live_at(clock["samples"]),
            "first_playing_ms": clock["firstPlayingAt"],
            "samples": len(lat),
            "misses": clock["misses"],
            "median_ms": median(lat),
            "p95_ms": percentile(lat, 95),
            "min_ms": min(lat),
            "max_ms": max(lat),
            "frozen_max_s": _frozen(clock["samples"]),
            "camera_not_active_s": not_active,
            **_ws_parts(page.evaluate("() => window.__pbWs")),
            "player_lag_s": page.evaluate(_LAG_JS),
            "player_ok": page.evaluate(f"() => {spec.is_playing}"),
            "state": page.evaluate(_STATE_JS),
        }
    finally:
        ctx.close()


def _live_at(samples: list[dict[str, Any]]) -> float | None:
    """When the page was first live (ms from navigation start): the first picture less than
    :data:`LIVE_MS` old. The player starts at the keyframe cache's first frame (TTFF) and
    fast-forwards to the edge; this is where that catch-up ended."""
    return next((s["at"] for s in samples if s["latency"] <= LIVE_MS), None)


def _ws_parts(ws: dict[str, Any] | None) -> dict[str, Any]:
    """The live socket's times (ms from navigation start; bench/ws_timing.js): opened, the
    init text, the first fragment (the message after the init segment), and the end of the
    keyframe cache's burst (the last message before the first gap of ``BURST_GAP_MS``)."""
    if not ws or not ws["created"] or len(ws["messages"]) < 2:
        return {"ws_created_ms": None}
    msgs = ws["messages"]
    end = len(msgs) - 1
    for i in range(2, len(msgs)):
        if msgs[i][0] - msgs[i - 1][0] > BURST_GAP_MS:
            end = i - 1
            break
    return {
        "ws_created_ms": ws["created"],
        "ws_init_ms": ws["init"],
        "ws_first_fragment_ms": msgs[1][0],
        "ws_cache_done_ms": msgs[end][0],
        "ws_cache_bytes": sum(size for _, size in msgs[1 : end + 1]),
        "ws_cache_messages": end,
    }


_STATE_JS = "() => (document.querySelector('.player') || {dataset: {}}).dataset.state || null"
#: The MSE player's own lag at the end (buffered end - currentTime, s; live-mse.js data-delay):
#: glass-to-glass far above it is a backlog before the browser (camera, POD, relay).
_LAG_JS = "() => parseFloat((document.querySelector('.player') || {dataset: {}}).dataset.delay)"


def _set_mode(db_url: str, base: str, seeded: Any, mode: str) -> None:
    _off_loop(sql, db_url, "UPDATE pods SET stream_mode = :m", m=mode)
    if mode == "tunnel":
        auth = login(base, seeded.email, seeded.password)
        wait_tunnel(base, auth, seeded.pod_id, timeout=60)


def _agent_config(seeded: Any, portal: str, url: str, hls: Path) -> dict[str, Any]:
    return {
        "pod_id": seeded.pod_id,
        "portal_url": portal,
        "api_key": seeded.api_key,
        "stream_token_secret": seeded.stream_token_secret,
        "cameras": [{"camera_id": CAMERA, "name": "Main Gate", "rtsp_url": url}],
        "listen_host": "127.0.0.1",
        "listen_port": free_port(),
        "advertise_address": "127.0.0.1",
        "heartbeat_interval": 2,
        "hls_dir": str(hls),
        "cors_origins": [portal],
        "log_level": "warning",
    }


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="glass-to-glass latency of the live view")
    p.add_argument("--gops", default="1,4,10", help="keyframe intervals (s), comma-separated")
    p.add_argument("--methods", default="proxy", help="proxy,tunnel,direct")
    p.add_argument("--players", default="hls", help=",".join(PLAYERS))
    p.add_argument("--seconds", type=float, default=30.0, help="sampling window per view")
    p.add_argument("--interval", type=float, default=0.2, help="seconds between samples")
    p.add_argument("--first-frame", type=float, default=60.0, help="give up after (s)")
    p.add_argument("--settle", type=float, default=None, help="camera running before viewing")
    p.add_argument("--width", type=int, default=1920)
    p.add_argument("--height", type=int, default=1080)
    p.add_argument("--fps", type=int, default=25)
    p.add_argument("--bitrate", type=int, default=4000, help="kbit/s (x264 target)")
    p.add_argument("--motion", type=int, default=4, help="px a frame the picture scrolls")
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    if args.smoke:
        args.gops, args.seconds, args.settle = "1", 3.0, 1.0
        args.width, args.height, args.bitrate = 640, 360, 600
    args.gops = [float(g) for g in args.gops.split(",")]
    args.methods = args.methods.split(",")
    args.players = args.players.split(",")
    for name in args.players:
        if name not in PLAYERS:
            p.error(f"unknown player {name!r} (known: {', '.join(PLAYERS)})")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = _parse(argv)
    if not camera_available() or not Path(CHROMIUM).exists():
        raise SystemExit(f"needs GStreamer's RTSP server, ffmpeg and Chromium ({CHROMIUM})")
    from playwright.sync_api import sync_playwright

    load_before = [round(x, 2) for x in os.getloadavg()]
    tmp = Path(tempfile.mkdtemp(prefix="pb-bench-g2g-"))
    db_url = new_sqlite_url(tmp)
    migrate(db_url)
    seeded = seed_company(db_url)
    runs: list[dict[str, Any]] = []
    try:
        with run_portal(db_url) as portal, sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            try:
                for gop in args.gops:
                    runs += _one_camera(browser, portal.base, db_url, seeded, gop, args, tmp)
            finally:
                browser.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return _report(args, runs, load_before)


def _one_camera(
    browser: Any, base: str, db_url: str, seeded: Any, gop: float, args: Any, tmp: Path
) -> list[dict[str, Any]]:
    profile = CameraProfile(
        h264_profile="high",
        gop_s=gop,
        clock=True,
        width=args.width,
        height=args.height,
        fps=args.fps,
        bitrate_kbps=args.bitrate,
        pattern="smpte",
        motion=args.motion,
    )
    hls = tmp / f"hls-{gop:g}"
    cam = TestCamera(tmp, profile=profile)
    agent: Proc | None = None
    out = []
    try:
        cam.start()
        agent, agent_base = start_pod_agent(tmp, _agent_config(seeded, base, cam.url, hls))
        # Viewers arrive at a camera that has been streaming (a full playlist), bounded.
        time.sleep(args.settle if args.settle is not None else min(3 * gop, 20) + 2)
        path = f"/cameras/{seeded.pod_id}/{CAMERA}"
        for method in args.methods:
            _set_mode(db_url, base, seeded, method)
            for player in args.players:
                r = _view(
                    browser, base, (seeded.email, seeded.password), path, player, args, agent_base
                )
                out.append({"gop_s": gop, "method": method, "player": player, **r})
                print(f"  gop {gop:g} s, {method}, {player}: {r}", flush=True)
        kbps = _bitrate_kbps(hls)
        for r in out:
            r["camera_kbps"] = kbps
        _set_mode(db_url, base, seeded, "proxy")
    finally:
        if agent is not None:
            agent.stop(timeout=15)
            agent.kill_group()
        cam.stop()
    return out


def _report(args: Any, runs: list[dict[str, Any]], load_before: list[float]) -> dict[str, Any]:
    headers = ["player", "method", "GOP s", "TTFF ms", "live at ms", "median ms", "p95 ms"]
    headers += ["max ms"]
    headers += ["frozen max s", "POD not active s", "samples", "camera kbit/s"]
    headers += ["socket opened ms", "cache in ms", "cache MB", "player lag s"]
    rows = []
    for r in runs:
        if not r["first_frame"]:
            rows.append([r["player"], r["method"], r["gop_s"], "no frame", *["-"] * 12])
            continue
        live: Any = "never" if r["live_ms"] is None else round(float(r["live_ms"]))
        ms: list[Any] = [round(float(r["ttff_ms"])), live]
        ms += [round(float(r[k])) for k in ("median_ms", "p95_ms", "max_ms")]
        rest = [r["frozen_max_s"], r["camera_not_active_s"], r["samples"], r["camera_kbps"]]
        ws: list[Any] = ["-"] * 3
        if r.get("ws_created_ms") is not None:
            ws = [round(r["ws_created_ms"]), round(r["ws_cache_done_ms"])]
            ws.append(r["ws_cache_bytes"] / 1e6)
        lag = r.get("player_lag_s")
        ws.append("-" if lag is None or lag != lag else lag)  # NaN: no MSE player
        rows.append([r["player"], r["method"], r["gop_s"], *ms, *rest, *ws])
    text = table(headers, rows)
    print(text)
    targets = []
    for r in runs:
        label = f"{r['player']}/{r['method']}/GOP {r['gop_s']:g} s"
        ok = r["first_frame"]
        targets.append(
            {
                "target": f"time to first frame <= 1.0 s ({label})",
                "value": f"{r['ttff_ms']:.0f} ms" if ok else "no frame",
                "met": ok and r["ttff_ms"] <= 1000,
            }
        )
        if r["gop_s"] == 4:
            targets.append(
                {
                    "target": f"glass-to-glass median <= 1.0 s, p95 <= 1.5 s ({label})",
                    "value": f"{r['median_ms']:.0f} / {r['p95_ms']:.0f} ms" if ok else "no frame",
                    "met": ok and r["median_ms"] <= 1000 and r["p95_ms"] <= 1500,
                }
            )
    for t in targets:
        print(f"  {'MET   ' if t['met'] else 'MISSED'} {t['target']}: {t['value']}")
    out = {
        "config": {
            "gops_s": args.gops,
            "methods": args.methods,
            "players": {p: PLAYERS[p].description for p in args.players},
            "seconds": args.seconds,
            "interval_s": args.interval,
            "camera": f"{args.width}x{args.height}@{args.fps} H.264 High (x264 superfast "
            f"zerolatency, scenecut=0), target {args.bitrate} kbit/s, SMPTE bars scrolling "
            f"{args.motion} px a frame, burned-in clock",
            "loadavg_before": load_before,
        },
        "runs": runs,
        "table": text,
        "targets": targets,
    }
    path_out = _write("live_latency", out, args.out)
    print(f"wrote {path_out}")
    result: dict[str, Any] = json.loads(path_out.read_text())
    return result


if __name__ == "__main__":
    main()
