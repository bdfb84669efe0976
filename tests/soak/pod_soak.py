"""POD soak: the real agent with N cameras on one RTSP test-camera server that is restarted
every R seconds, for D seconds. Checks after every outage that all cameras came back
``active``, that there are never more ffmpeg processes than cameras (none after stop), and that
each camera's segment directory stays bounded.

    python -m tests.soak.pod_soak --cameras 4 --duration 1800 --restart-every 120   # full
    python -m tests.soak.pod_soak --cameras 4 --duration 40 --restart-every 20      # CI
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tests.faults.procstat import usage
from tests.support.agent import Agent
from tests.support.builders import pod_config
from tests.support.camera import TestCamera
from tests.support.procs import pids_with

#: Segments a camera directory may hold: hls_list_size (6) + delete_segments' 2 extra + the
#: segment being written + the playlist and its temp file, with slack for one deletion lag.
MAX_FILES_PER_CAMERA = 14
#: Bounds the harness' own restarts of a crashed test camera (see ``camera_crashes``).
MAX_CAMERA_CRASHES = 10


@dataclass
class SoakResult:
    cameras: int
    duration_s: float
    restarts: int
    recoveries: list[float] = field(default_factory=list)  # seconds until all active again
    #: The GStreamer test camera itself sometimes aborts when several clients connect while
    #: its media prepares (gst_rtsp_media_get_rates assertion): the harness restarts it and
    #: counts it here; the agent's recovery is timed from the camera's actual return.
    camera_crashes: int = 0
    max_ffmpeg: int = 0
    max_files_per_camera: int = 0
    agent_rss_start_kib: int = 0
    agent_rss_end_kib: int = 0
    ffmpeg_after_stop: int = 0
    agent_exit: int | None = None
    failures: list[str] = field(default_factory=list)


def run(a: argparse.Namespace) -> SoakResult:
    tmp = Path(tempfile.mkdtemp(prefix="pb-pod-soak-"))
    result = SoakResult(cameras=a.cameras, duration_s=0, restarts=0)
    camera = TestCamera(tmp, fps=10)
    camera.start()
    ids = [f"cam-{i}" for i in range(a.cameras)]
    config = pod_config(tmp, camera.url, camera_id=ids[0], hls_list_size=6)
    config["cameras"] = [{"camera_id": c, "name": c, "rtsp_url": camera.url} for c in ids[1:]]
    agent = Agent(tmp, config)
    started = time.monotonic()

    def sample() -> None:
        result.max_ffmpeg = max(result.max_ffmpeg, len(pids_with(agent.hls_dir)))
        for cam in ids:
            d = Path(agent.hls_dir) / cam
            n = len(list(d.iterdir())) if d.exists() else 0
            result.max_files_per_camera = max(result.max_files_per_camera, n)

    def camera_alive() -> bool:
        return camera.proc is not None and camera.proc.popen.poll() is None

    def all_active(timeout: float) -> float | None:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            sample()
            if not camera_alive():
                result.camera_crashes += 1
                if result.camera_crashes > MAX_CAMERA_CRASHES:
                    result.failures.append("the test camera kept crashing")
                    return None
                camera.stop()
                camera.start()
                t0 = time.monotonic()
            statuses = {c["camera_id"]: c["status"] for c in agent.health()["cameras"]}
            if all(statuses.get(c) == "active" for c in ids):
                return time.monotonic() - t0
            time.sleep(0.5)
        return None

    try:
        if all_active(60) is None:
            result.failures.append("cameras never became active")
        result.agent_rss_start_kib = usage(agent.proc.pid).rss_kib
        while time.monotonic() - started + a.restart_every <= a.duration + 1:
            until = time.monotonic() + a.restart_every
            while time.monotonic() < until:
                sample()
                time.sleep(1)
            camera.stop()
            time.sleep(a.outage)
            camera.start()
            result.restarts += 1
            took = all_active(90)
            if took is None:
                result.failures.append(f"outage {result.restarts} not recovered within 90 s")
            else:
                result.recoveries.append(round(took, 1))
        result.agent_rss_end_kib = usage(agent.proc.pid).rss_kib
    finally:
        result.duration_s = round(time.monotonic() - started, 1)
        result.agent_exit = agent.stop()
        time.sleep(0.5)
        result.ffmpeg_after_stop = len(pids_with(agent.hls_dir))
        agent.close()
        camera.stop()
    if result.max_ffmpeg > a.cameras:
        result.failures.append(f"{result.max_ffmpeg} ffmpeg processes for {a.cameras} cameras")
    if result.max_files_per_camera > MAX_FILES_PER_CAMERA:
        result.failures.append(f"segment dir grew to {result.max_files_per_camera} files")
    if result.ffmpeg_after_stop:
        result.failures.append(f"{result.ffmpeg_after_stop} ffmpeg left after stop")
    return result


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="POD agent soak with camera restarts")
    p.add_argument("--cameras", type=int, default=4)
    p.add_argument("--duration", type=float, default=1800)
    p.add_argument("--restart-every", type=float, default=120)
    p.add_argument("--outage", type=float, default=3, help="seconds the camera stays down")
    p.add_argument("--out", type=Path)
    return p


def main(argv: list[str] | None = None) -> int:
    a = parser().parse_args(argv)
    result = run(a)
    data: dict[str, Any] = asdict(result)
    text = json.dumps(data, indent=2)
    print(text)
    if a.out:
        a.out.write_text(text + "\n")
    return 0 if not result.failures else 1


if __name__ == "__main__":
    sys.exit(main())
