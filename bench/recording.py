"""Recording at the POD: what it costs the agent, what it writes, and how fast its index is.

1. **CPU and write rate** — one agent (real ``platebridge-pod run``) with one 1080p25 H.264
   camera at ~4 Mbit/s, alternating rounds of the *same* agent config with recording off (the
   baseline) and on: CPU of the agent and its ffmpeg (process tree), and the bytes the recording
   wrote per second against the camera's bitrate measured in the same window from the HLS
   segments of the same RTSP session (stream copy: both carry the same video).
2. **Index** — a real SQLite index of 30 days x 4 cameras of 60 s files (172,800 files, a 4 s
   GOP, a few gaps a day): one day's spans of one camera (the timeline's query), against the
   same query on an index of one day of one camera (baseline); a retention pass with nothing to
   delete (every 10 s on a POD) and one that expires a day of all four cameras (5,760 files,
   empty files on disk), against unlinking the same number of files alone.

    .venv/bin/python -m bench.recording [--seconds 25] [--rounds 2] [--smoke]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._common import RESULTS, ProcWatch, median, percentile, ratio, table, write_result
from platebridge.pod.config import load_config
from platebridge.pod.recording.index import RecordedFile, RecordingIndex
from platebridge.pod.recording.retention import retention_pass
from tests.support.agent import Agent
from tests.support.builders import pod_config, write_pod_config
from tests.support.camera import PROFILES, TestCamera, camera_available

DAY = 86400.0
T0 = 1_790_000_000.0 - 1_790_000_000.0 % DAY  # a UTC midnight
CAMERAS = ("gate-1", "gate-2", "gate-3", "gate-4")


# --- 1. CPU and write rate ----------------------------------------------------------------


def _camera_config(tmp: Path, url: str, record: bool, seconds: int) -> dict[str, Any]:
    raw = pod_config(tmp, url, recording_file_seconds=seconds, heartbeat_interval=60)
    for key in ("camera_id", "camera_name", "camera_rtsp_url", "camera_position"):
        raw.pop(key)
    raw["cameras"] = [{"camera_id": "cam", "name": "Cam", "rtsp_url": url, "record": record}]
    raw["hls_dir"] = str(tmp / ("hls-on" if record else "hls-off"))
    raw["recording_dir"] = str(tmp / "recordings")
    return raw


def _sizes(directory: Path, suffix: str) -> dict[str, int]:
    out = {}
    for root, _, names in os.walk(directory):
        for name in names:
            if name.endswith(suffix):
                with contextlib.suppress(OSError):
                    out[os.path.join(root, name)] = os.stat(os.path.join(root, name)).st_size
    return out


def _round(tmp: Path, url: str, record: bool, seconds: float) -> dict[str, float]:
    raw = _camera_config(tmp, url, record, 60)
    agent = Agent(tmp, raw)
    try:
        agent.wait_status("active", camera_id="cam", timeout=60)
        time.sleep(6)  # warm-up: probe done, first files open, the index loop has run once
        hls, rec = Path(raw["hls_dir"]), Path(raw["recording_dir"])
        ts_seen = _sizes(hls, ".ts")
        rec0 = sum(_sizes(rec, ".mp4").values())
        watch = ProcWatch({"agent": agent.pid}).start()
        t0 = time.monotonic()
        ts_bytes = 0
        while time.monotonic() - t0 < seconds:  # bounded by --seconds
            time.sleep(0.5)
            for path, size in _sizes(hls, ".ts").items():
                if path not in ts_seen:  # HLS publishes whole segments (temp_file)
                    ts_seen[path] = size
                    ts_bytes += size
        usage = watch.stop()["agent"]
        wall = time.monotonic() - t0
        rec_bytes = sum(_sizes(rec, ".mp4").values()) - rec0
        return {
            "cpu_percent": usage.cpu_percent,
            "hls_kbps": ts_bytes * 8 / 1000 / wall,
            "recording_kbps": rec_bytes * 8 / 1000 / wall if record else 0.0,
        }
    finally:
        agent.close()


def bench_cpu(tmp: Path, seconds: float, rounds: int, smoke: bool) -> dict[str, Any]:
    profile = dataclasses.replace(PROFILES["h264-main-gop2"], pattern="smpte", motion=4)
    profile = profile.at_1080p(4000) if not smoke else profile
    tmp.mkdir(parents=True, exist_ok=True)
    cam = TestCamera(tmp, profile=profile)
    cam.start()
    runs: dict[str, list[dict[str, float]]] = {"off": [], "on": []}
    try:
        for _ in range(rounds):
            for way in ("off", "on"):
                runs[way].append(_round(tmp, cam.url, way == "on", seconds))
    finally:
        cam.stop()
    out: dict[str, Any] = {"camera": f"H.264 {profile.width}x{profile.height}p{profile.fps}"}
    for way, rs in runs.items():
        out[way] = {k: median([r[k] for r in rs]) for k in rs[0]} | {"runs": rs}
    on = out["on"]
    out["extra_cpu_percent"] = on["cpu_percent"] - out["off"]["cpu_percent"]
    out["write_amplification"] = ratio(on["recording_kbps"], on["hls_kbps"])
    return out


# --- 2. Index -----------------------------------------------------------------------------


def _files(cam: str, day: int, directory: Path) -> list[RecordedFile]:
    start = T0 + day * DAY
    out = []
    for i in range(1440):
        t = start + i * 60
        frames = tuple((t + k * 4.0, 1200 + k * 250_000) for k in range(15))
        path = directory / cam / f"{day:02d}" / f"{i:04d}.mp4"
        out.append(RecordedFile(cam, path, t, t + 60, 3_750_000, frames, 1200))
    return out


def _build(path: Path, days: int, cameras: tuple[str, ...], directory: Path) -> RecordingIndex:
    index = RecordingIndex(path)
    for cam in cameras:
        for day in range(days):
            files = _files(cam, day, directory)
            # a camera outage of 5 min and a POD restart of 1 min a day: holes with reasons
            drop = {100, 101, 102, 103, 104, 900}
            index.put_many(f for i, f in enumerate(files) if i not in drop)
            index.add_gap(cam, files[100].start, files[105].start, "camera_down")
            index.add_gap(cam, files[900].start, files[901].start, "pod_down")
    return index


def _time_spans(index: RecordingIndex, days: int, reps: int) -> list[float]:
    rng = random.Random(7)
    times = []
    for _ in range(reps):
        cam, day = rng.choice(CAMERAS[: 1 if days == 1 else 4]), rng.randrange(days)
        t = time.perf_counter()
        spans = index.spans(cam, T0 + day * DAY, T0 + (day + 1) * DAY)
        times.append((time.perf_counter() - t) * 1000)
        assert any(s.reason == "camera_down" for s in spans)
    return times


def bench_index(tmp: Path, days: int, reps: int) -> dict[str, Any]:
    small = _build(tmp / "small.sqlite3", 1, CAMERAS[:1], tmp / "small")
    big = _build(tmp / "big.sqlite3", days, CAMERAS, tmp / "files")
    base = _time_spans(small, 1, reps)
    full = _time_spans(big, days, reps)
    small.close()
    # retention with nothing to delete (POD-wide 60 days, no free-space floor)
    raw = pod_config(tmp, "rtsp://127.0.0.1:1/x", recording_dir=str(tmp), retention_days=60)
    raw.update(retention_min_free_bytes=0, retention_min_free_percent=0)
    for key in ("camera_id", "camera_name", "camera_rtsp_url", "camera_position"):
        raw.pop(key)
    raw["cameras"] = [{"camera_id": c, "name": c, "rtsp_url": f"rtsp://127.0.0.1:1/{c}"}
                      for c in CAMERAS]  # fmt: skip
    config = load_config(write_pod_config(tmp, raw))
    idle = []
    for _ in range(5):
        t = time.perf_counter()
        result = retention_pass(big, config, now=T0 + days * DAY)
        idle.append((time.perf_counter() - t) * 1000)
        assert result.deleted == 0
    # retention expiring the oldest day of every camera (its files exist, empty)
    expiring = [f for cam in CAMERAS for f in _files(cam, 0, tmp / "files")]
    for f in expiring:
        f.path.parent.mkdir(parents=True, exist_ok=True)
        f.path.touch()
    keep = config.model_copy(update={"retention_days": days - 1})
    t = time.perf_counter()
    result = retention_pass(big, keep, now=T0 + days * DAY + 60)
    expire_ms = (time.perf_counter() - t) * 1000
    assert result.deleted == len(expiring) - 6 * len(CAMERAS), result  # minus the holes
    for f in expiring:  # the baseline: unlinking the same files alone
        f.path.parent.mkdir(parents=True, exist_ok=True)
        f.path.touch()
    t = time.perf_counter()
    for f in expiring:
        f.path.unlink(missing_ok=True)
    unlink_ms = (time.perf_counter() - t) * 1000
    rows = len(big.paths())
    big.close()
    return {
        "files_indexed": rows + result.deleted,
        "spans_small_ms": {"p50": median(base), "p95": percentile(base, 95)},
        "spans_full_ms": {"p50": median(full), "p95": percentile(full, 95)},
        "retention_idle_ms": median(idle),
        "retention_expire_day_ms": expire_ms,
        "expired_files": result.deleted,
        "unlink_alone_ms": unlink_ms,
    }


# --- report -------------------------------------------------------------------------------


def targets(cpu: dict[str, Any], index: dict[str, Any]) -> list[dict[str, Any]]:
    extra, kbps = cpu["extra_cpu_percent"], cpu["on"]["hls_kbps"]
    amp = cpu["write_amplification"]
    spans = index["spans_full_ms"]["p95"]
    passes = max(index["retention_idle_ms"], index["retention_expire_day_ms"])
    return [
        {"name": f"recording's extra agent CPU, % of a core, camera at {kbps:.0f} kbit/s",
         "value": extra, "target": "<= 1.0", "met": extra <= 1.0},
        {"name": "bytes written / camera bitrate (HLS of the same session)", "value": amp,
         "target": "<= 1.1", "met": amp <= 1.1},
        {"name": "one day's spans, 30 d x 4 cameras indexed, p95 ms", "value": spans,
         "target": "<= 10", "met": spans <= 10},
        {"name": "retention pass over that (ms, worst of idle / expiring a day)",
         "value": passes, "target": "<= 1000", "met": passes <= 1000},
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=25.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--smoke", action="store_true", help="small camera, 4 s, 2 days")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if not camera_available():
        raise SystemExit("needs /usr/bin/python3 with GStreamer RTSP server and ffmpeg")
    seconds, rounds, days = (4.0, 1, 2) if args.smoke else (args.seconds, args.rounds, args.days)
    with tempfile.TemporaryDirectory(prefix="pb-bench-rec-") as tmp_dir:
        tmp = Path(tmp_dir)
        index = bench_index(tmp / "index", days, 20 if args.smoke else 200)
        cpu = bench_cpu(tmp / "cpu", seconds, rounds, args.smoke)
    rows = [
        ["agent CPU % (recording off / on)", f"{cpu['off']['cpu_percent']:.1f}",
         f"{cpu['on']['cpu_percent']:.1f}", f"+{cpu['extra_cpu_percent']:.2f}"],
        ["camera kbit/s (HLS) / recording kbit/s", f"{cpu['on']['hls_kbps']:.0f}",
         f"{cpu['on']['recording_kbps']:.0f}", f"x{cpu['write_amplification']:.3f}"],
        ["one day's spans p50/p95 ms (1 d x 1 cam / full)",
         f"{index['spans_small_ms']['p50']:.2f}/{index['spans_small_ms']['p95']:.2f}",
         f"{index['spans_full_ms']['p50']:.2f}/{index['spans_full_ms']['p95']:.2f}",
         f"x{ratio(index['spans_full_ms']['p95'], index['spans_small_ms']['p95']):.2f}"],
        ["retention ms: idle pass / expiring a day (unlink alone)",
         f"{index['retention_idle_ms']:.1f}",
         f"{index['retention_expire_day_ms']:.0f} ({index['unlink_alone_ms']:.0f})",
         f"{index['expired_files']} files"],
    ]  # fmt: skip
    result: dict[str, Any] = {
        "table": table(["measure", "baseline", "value", "ratio / note"], rows),
        "targets": targets(cpu, index),
    }
    data = {"results": {"cpu": cpu, "index": index, "camera": cpu["camera"]}} | result
    write_result("recording", data, args.out)
    print(result["table"])
    for t in result["targets"]:
        print(f"- {t['name']}: {t['value']:.3f} (target {t['target']}) "
              f"{'MET' if t['met'] else 'MISSED'}")  # fmt: skip
    return result


if __name__ == "__main__":
    main()
