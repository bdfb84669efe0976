"""Benchmark 4: the viewer's experience in Chromium (Playwright, /usr/bin/chromium, headless).

World: a portal (SQLite), a real POD agent with one RTSP test camera (x264, 1 s keyframes,
``hls_segment_seconds: 1``), the portal's own live page ``/cameras/{pod}/{camera}`` and its
player (hls.js, the settings in ``static/player.js``). For each open (a fresh browser context,
signed in beforehand, so the timing is the live view itself):

* time to first frame: navigation start → the ``<video>``'s first ``playing`` event;
* live latency after ``--watch`` seconds of playback: wall clock minus hls.js's
  ``playingDate`` (the EXT-X-PROGRAM-DATE-TIME of the playing position), and hls.js's own
  ``latency`` estimate. The instance is captured by wrapping ``window.Hls`` in an init script.

Baseline (same run, interleaved): the same page with the pod in ``direct`` mode (the browser
fetches from the POD itself), so ``x direct`` is what the proxy costs.

    .venv/bin/python -m bench.browser [--opens 5] [--watch 6] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench._common import median, ratio, run_portal, start_pod_agent, table
from bench._common import write_result as _write
from tests.support.camera import TestCamera, camera_available
from tests.support.portal import migrate, new_sqlite_url, seed_company, sql
from tests.support.procs import Proc, free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
CAMERA = "gate-camera-1"

# Capture the hls.js instance and the first `playing` event (ms since navigation start).
INIT_SCRIPT = """
(() => {
  window.__pb = {firstPlaying: null, hls: null};
  document.addEventListener('playing', () => {
    if (window.__pb.firstPlaying === null) { window.__pb.firstPlaying = performance.now(); }
  }, true);
  let real;
  Object.defineProperty(window, 'Hls', {
    configurable: true,
    get() { return real; },
    set(v) {
      const Orig = v;
      const Wrapped = function (cfg) {
        const h = new Orig(cfg);
        window.__pb.hls = h;
        return h;
      };
      Object.setPrototypeOf(Wrapped, Orig);
      Wrapped.prototype = Orig.prototype;
      real = Wrapped;
    },
  });
})();
"""

SAMPLE_LATENCY = """
() => {
  const h = window.__pb.hls;
  const v = document.querySelector('video');
  const out = {currentTime: v ? v.currentTime : null, playingDate: null, hlsLatency: null};
  if (h) {
    if (h.playingDate) { out.playingDate = Date.now() - h.playingDate.getTime(); }
    if (typeof h.latency === 'number') { out.hlsLatency = h.latency * 1000; }
  }
  return out;
}
"""


def _open_once(browser: Any, base: str, email: str, password: str, path: str, watch: float):
    ctx = browser.new_context(base_url=base)
    try:
        ctx.request.post("/api/auth/login", data={"email": email, "password": password})
        page = ctx.new_page()
        page.add_init_script(INIT_SCRIPT)
        page.goto(path)
        page.wait_for_function("() => window.__pb.firstPlaying !== null", timeout=30_000)
        ttff = page.evaluate("() => window.__pb.firstPlaying")
        samples = []
        deadline = time.monotonic() + watch
        while time.monotonic() < deadline:
            page.wait_for_timeout(500)
            samples.append(page.evaluate(SAMPLE_LATENCY))
        tail = samples[len(samples) // 2 :]  # the second half: settled playback
        pdt = [s["playingDate"] for s in tail if s["playingDate"] is not None]
        est = [s["hlsLatency"] for s in tail if s["hlsLatency"] is not None]
        return {
            "ttff_ms": ttff,
            "latency_pdt_ms": statistics.median(pdt) if pdt else None,
            "latency_hls_ms": statistics.median(est) if est else None,
            "advanced": samples[-1]["currentTime"] > samples[0]["currentTime"]
            if samples
            else False,
        }
    finally:
        ctx.close()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description="browser time-to-first-frame and live latency")
    p.add_argument("--opens", type=int, default=5)
    p.add_argument("--watch", type=float, default=6.0, help="seconds of playback per open")
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    if args.smoke:
        args.opens, args.watch = 1, 2.0
    if not camera_available() or not Path(CHROMIUM).exists():
        raise SystemExit("needs GStreamer's RTSP server, ffmpeg and /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="pb-bench-browser-"))
    db_url = new_sqlite_url(tmp)
    migrate(db_url)
    seeded = seed_company(db_url)
    runs: dict[str, list[dict[str, Any]]] = {"proxy": [], "direct": []}
    agent: Proc | None = None
    cam = TestCamera(tmp, pattern="ball", width=1280, height=720, fps=25)
    try:
        cam.start()
        with run_portal(db_url) as portal:
            port = free_port()
            config = {
                "pod_id": seeded.pod_id,
                "portal_url": portal.base,
                "api_key": seeded.api_key,
                "stream_token_secret": seeded.stream_token_secret,
                "cameras": [{"camera_id": CAMERA, "name": "Main Gate", "rtsp_url": cam.url}],
                "listen_host": "127.0.0.1",
                "listen_port": port,
                "advertise_address": "127.0.0.1",
                "heartbeat_interval": 2,
                "hls_dir": str(tmp / "hls"),
                "hls_segment_seconds": 1,
                "cors_origins": [portal.base],
                "log_level": "warning",
            }
            agent, _ = start_pod_agent(tmp, config)
            time.sleep(4)  # a few segments in the playlist, as for any viewer arriving later
            # hls.js figures: the HLS player (the live page plays MSE by default, static/live.js)
            path = f"/cameras/{seeded.pod_id}/{CAMERA}?player=hls"
            with sync_playwright() as pw:
                browser = pw.chromium.launch(
                    executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
                )
                try:
                    modes = ("proxy",) if args.smoke else ("proxy", "direct")
                    for _ in range(args.opens):
                        for mode in modes:
                            # asyncio.run off Playwright's loop thread
                            with ThreadPoolExecutor(1) as pool:
                                pool.submit(
                                    sql, db_url, "UPDATE pods SET stream_mode = :m", m=mode
                                ).result(timeout=60)
                            runs[mode].append(
                                _open_once(
                                    browser,
                                    portal.base,
                                    seeded.email,
                                    seeded.password,
                                    path,
                                    args.watch,
                                )
                            )
                finally:
                    browser.close()
    finally:
        if agent is not None:
            agent.stop(timeout=15)
            agent.kill_group()
        cam.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    def summary(mode: str) -> dict[str, Any]:
        rs = runs[mode]
        pdt = [r["latency_pdt_ms"] for r in rs if r["latency_pdt_ms"] is not None]
        est = [r["latency_hls_ms"] for r in rs if r["latency_hls_ms"] is not None]
        return {
            "opens": len(rs),
            "ttff_ms_median": median([r["ttff_ms"] for r in rs]),
            "ttff_ms_all": [round(r["ttff_ms"]) for r in rs],
            "latency_pdt_ms_median": median(pdt),
            "latency_hls_ms_median": median(est),
            "all_advanced": all(r["advanced"] for r in rs),
        }

    res = {m: summary(m) for m in runs}
    rows = []
    for m in ("direct", "proxy"):
        r = res[m]
        rows.append(
            [
                m,
                r["opens"],
                r["ttff_ms_median"],
                ratio(r["ttff_ms_median"], res["direct"]["ttff_ms_median"]),
                r["latency_pdt_ms_median"],
                r["latency_hls_ms_median"],
                r["all_advanced"],
            ]
        )
    text = table(
        [
            "stream",
            "opens",
            "TTFF ms (median)",
            "x direct",
            "latency ms (PDT)",
            "hls.js latency ms",
            "kept playing",
        ],
        rows,
    )
    print(text)
    px = res["proxy"]
    tgts = [
        {
            "target": "browser median time-to-first-frame <= 1.5 s (proxy)",
            "value": f"{px['ttff_ms_median']:.0f} ms",
            "met": px["ttff_ms_median"] <= 1500,
        },
        {
            "target": "browser live latency <= 3 s (proxy, wall clock - PDT)",
            "value": f"{px['latency_pdt_ms_median']:.0f} ms",
            "met": px["latency_pdt_ms_median"] <= 3000,
        },
    ]
    for t in tgts:
        print(f"  {'MET   ' if t['met'] else 'MISSED'} {t['target']}: {t['value']}")
    out = {
        "config": {
            "opens": args.opens,
            "watch_s": args.watch,
            "camera": "1280x720@25 H.264 (x264 zerolatency), 1 s keyframes, 300 kbit/s",
            "segments": "MPEG-TS, hls_segment_seconds 1 (segment = keyframe interval = 1 s), "
            "list size 6",
            "player": "hls.js (static/player.js): liveSyncDurationCount 3, lowLatencyMode false, "
            "enableWorker false",
            "browser": "Chromium headless, new context per open, signed in beforehand",
        },
        "results": res,
        "runs": runs,
        "table": text,
        "targets": tgts,
    }
    path_out = _write("browser", out, args.out)
    print(f"wrote {path_out}")
    return json.loads(path_out.read_text())


if __name__ == "__main__":
    main()
