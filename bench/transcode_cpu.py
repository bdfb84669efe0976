"""Benchmark: the CPU cost of ``transcode: h264`` per camera (docs/performance.md, "Transcoding").

A real GStreamer H.265 test camera (tests/support/camera.py, 25 fps, scrolling SMPTE bars so
the bitrate is a real camera's: 1080p at ~4 Mbit/s, 720p at ~2.5 Mbit/s) and the POD's own
ffmpeg command line (``pod.ffmpeg.camera_argv``: one RTSP session, HLS + live fMP4 on stdout),
run here as ffmpeg alone (the agent adds nothing per frame). For each way, ``--seconds`` (≥ 20)
of CPU time of the ffmpeg process from ``/proc/PID/stat`` (utime + stime, all its threads),
after a warm-up, and the frames its live output delivered (fMP4 fragments, one per frame):

- ``copy``: ``transcode: off``, the baseline (stream copy), same camera, same run;
- ``h264``: ``transcode: h264``, libx264 once, through the tee muxer into both outputs;
- ``h264-720p`` (1080p camera only): the same, scaled to 1280 wide (``transcode_width``);
- ``h264-twice``: the naive command line, two ordinary outputs each with its own libx264:
  what the tee avoids; ``h264`` should cost about half its extra CPU.

Ways alternate within each round (``--rounds``), the figure is the median of the rounds. The
camera's own CPU (it encodes H.265 in software; a real camera does that in hardware) is
reported separately with the machine's load average.

    .venv/bin/python -m bench.transcode_cpu [--seconds 25] [--rounds 2] [--sizes 1080,720]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench._common import RESULTS, table, write_result
from platebridge.core.fmp4 import Fragment, Splitter
from platebridge.pod.config import PodConfig, parse_config
from platebridge.pod.ffmpeg import MediaInfo, camera_argv, encode_for
from platebridge.pod.transcode import video_args
from tests.support.camera import PROFILES, TestCamera, camera_available

TICKS = os.sysconf("SC_CLK_TCK")
WARMUP = 6.0
SIZES = {1080: (1920, 1080, 4000), 720: (1280, 720, 2500), 360: (640, 360, 800)}


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def pod_config(hls_dir: Path, url: str, **camera: Any) -> PodConfig:
    raw = {
        "pod_id": "bench",
        "portal_url": "http://127.0.0.1:9",
        "api_key": "pbk_bench",
        "stream_token_secret": "b" * 20,
        "hls_dir": str(hls_dir),
        "cameras": [{"camera_id": "cam", "name": "Cam", "rtsp_url": url, **camera}],
    }
    return parse_config(raw, env={})


def twice_argv(config: PodConfig, media: MediaInfo) -> list[str]:
    """The copy command line with each ``-c:v copy`` replaced by its own libx264: two ordinary
    outputs, two encoders (what the tee avoids)."""
    cam = config.cameras[0]
    copy = camera_argv(config, cam, dataclasses.replace(media, video_codec="h264"))  # no hvc1
    video = video_args("libx264", encode_for(cam, media))
    out: list[str] = []
    i = 0
    while i < len(copy):
        if copy[i : i + 2] == ["-c:v", "copy"]:
            out += video
            i += 2
        else:
            out.append(copy[i])
            i += 1
    return out


@dataclasses.dataclass
class Run:
    way: str
    cpu_per_s: float  # CPU seconds per wall second (1.0 = one core busy)
    fps: float  # frames the live output delivered per second
    kbps: float  # the live output's bitrate

    @property
    def ms_per_frame(self) -> float:
        """CPU per frame: comparable whatever frame rate a loaded camera managed."""
        return 1000 * self.cpu_per_s / self.fps if self.fps else float("nan")


def measure(argv: list[str], way: str, seconds: float) -> Run:
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    frames, size = [0], [0]
    counting = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        splitter = Splitter()
        while chunk := proc.stdout.read1(65536):  # type: ignore[attr-defined]
            for item in splitter.feed(chunk):
                if isinstance(item, Fragment) and counting.is_set():
                    frames[0] += 1
                    size[0] += len(item.data)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        time.sleep(WARMUP)
        if proc.poll() is not None:
            raise RuntimeError(f"{way}: ffmpeg exited with {proc.returncode}")
        t0, c0 = time.monotonic(), cpu_seconds(proc.pid)
        counting.set()
        time.sleep(seconds)
        t1, c1 = time.monotonic(), cpu_seconds(proc.pid)
        counting.clear()
        wall = t1 - t0
        return Run(way, (c1 - c0) / wall, frames[0] / wall, size[0] * 8 / 1000 / wall)
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        reader.join(5)


def bench_size(height: int, seconds: float, rounds: int, tmp: Path) -> dict[str, Any]:
    width, _, kbps = SIZES[height]
    profile = dataclasses.replace(
        PROFILES["h265"], width=width, height=height, fps=25, bitrate_kbps=kbps
    )
    profile = dataclasses.replace(profile, pattern="smpte", motion=4 if height >= 720 else 2)
    cam = TestCamera(tmp, profile=profile)
    cam.start()
    try:
        media = MediaInfo("hevc", "Main", width, height, 25.0)
        hls = tmp / f"hls-{height}"
        (hls / "cam").mkdir(parents=True, exist_ok=True)
        copy_cfg = pod_config(hls, cam.url)
        h264_cfg = pod_config(hls, cam.url, transcode="h264")
        ways = {
            "copy": camera_argv(copy_cfg, copy_cfg.cameras[0], media),
            "h264": camera_argv(h264_cfg, h264_cfg.cameras[0], media),
        }
        if height > 720:
            scaled = pod_config(hls, cam.url, transcode="h264", transcode_width=1280)
            ways["h264-720p"] = camera_argv(scaled, scaled.cameras[0], media)
        ways["h264-twice"] = twice_argv(copy_cfg, media)
        runs: dict[str, list[Run]] = {w: [] for w in ways}
        cam_cpu: list[float] = []
        assert cam.proc is not None
        for _ in range(rounds):
            for way, argv in ways.items():
                c0, t0 = cpu_seconds(cam.proc.pid), time.monotonic()
                runs[way].append(measure(argv, way, seconds))
                cam_cpu.append((cpu_seconds(cam.proc.pid) - c0) / (time.monotonic() - t0))
        out: dict[str, Any] = {"camera": f"H.265 {width}x{height}p25 ~{kbps} kbit/s"}
        for way, rs in runs.items():
            out[way] = {
                "cpu_per_s": statistics.median(r.cpu_per_s for r in rs),
                "fps": statistics.median(r.fps for r in rs),
                "kbps": statistics.median(r.kbps for r in rs),
                "ms_per_frame": statistics.median(r.ms_per_frame for r in rs),
                "runs": [dataclasses.asdict(r) | {"ms_per_frame": r.ms_per_frame} for r in rs],
            }
        out["camera_cpu_per_s"] = statistics.median(cam_cpu)
        return out
    finally:
        cam.stop()


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Encoded once: the tee's extra CPU per frame over copy is at most 3/4 of two encoders'
    (≈ 1/2 expected); and the transcoder keeps up with the camera (its output delivers ≥ 95 %
    of the frames the stream copy delivered from the same camera)."""
    out = []
    for size, res in results.items():
        base = res["copy"]["ms_per_frame"]
        once = res["h264"]["ms_per_frame"] - base
        twice = res["h264-twice"]["ms_per_frame"] - base
        value = once / twice if twice > 0 else float("nan")
        out.append({"name": f"{size}: h264 extra CPU per frame / two encoders'", "value": value,
                    "target": "<= 0.75", "met": value <= 0.75})  # fmt: skip
        kept = res["h264"]["fps"] / res["copy"]["fps"] if res["copy"]["fps"] else float("nan")
        out.append({"name": f"{size}: h264 frames out / copy's", "value": kept,
                    "target": ">= 0.95", "met": kept >= 0.95})  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=25.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--sizes", default="1080,720")
    parser.add_argument("--smoke", action="store_true", help="360p, 3 s, one round")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if not camera_available():
        raise SystemExit("needs /usr/bin/python3 with GStreamer RTSP server and ffmpeg")
    sizes = [360] if args.smoke else [int(s) for s in args.sizes.split(",")]
    seconds, rounds = (3.0, 1) if args.smoke else (max(20.0, args.seconds), args.rounds)
    load0 = os.getloadavg()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="transcode-bench-") as tmp:
        for height in sizes:
            results[f"{height}p"] = bench_size(height, seconds, rounds, Path(tmp))
    rows = []
    for size, res in results.items():
        for way in ("copy", "h264", "h264-720p", "h264-twice"):
            if way in res:
                r = res[way]
                at_25 = r["ms_per_frame"] * 25 / 1000
                rows.append([size, way, r["fps"], r["kbps"], r["cpu_per_s"], r["ms_per_frame"],
                             at_25, res["camera_cpu_per_s"]])  # fmt: skip
    headers = ["camera", "way", "fps out", "kbit/s out", "ffmpeg CPU s/s", "CPU ms/frame",
               "cores at 25 fps", "camera CPU s/s"]  # fmt: skip
    text = table(headers, rows)
    goals = targets(results)
    print(text)
    for goal in goals:
        verdict = "MET" if goal["met"] else "MISSED"
        print(f"{goal['name']}: {goal['value']:.2f} (target {goal['target']}) {verdict}")
    print(f"load average before: {load0}, after: {os.getloadavg()}")
    data = {
        "seconds": seconds,
        "rounds": rounds,
        "results": results,
        "loadavg_before": load0,
        "table": text,
        "targets": goals,
    }
    path = write_result("transcode_cpu", data, args.out)
    print(f"wrote {path}")
    return {**data, "machine": json.loads(path.read_text())["machine"]}


if __name__ == "__main__":
    main()
