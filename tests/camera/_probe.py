"""ffprobe helpers for the camera-profile tests."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import time
from types import ModuleType

from tests.support.procs import REPO


def clock_code() -> ModuleType:
    """tools/clock_code.py (no dependencies; the camera imports it as a script's neighbour)."""
    spec = importlib.util.spec_from_file_location("clock_code", REPO / "tools" / "clock_code.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def streams(url: str) -> list[dict[str, object]]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-rtsp_transport", "tcp", "-show_streams", "-of", "json", url],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    result: list[dict[str, object]] = json.loads(out.stdout)["streams"]
    return result


def keyframe_times(url: str, count: int, timeout: float) -> list[float]:
    """The pts (s) of the first ``count`` video keyframes ffprobe sees from ``url``."""
    argv = ["ffprobe", "-v", "error", "-rtsp_transport", "tcp", "-select_streams", "v:0"]
    argv += ["-show_entries", "packet=pts_time,flags", "-of", "csv=p=0", url]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    times: list[float] = []
    deadline = time.monotonic() + timeout
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            pts, _, flags = line.strip().partition(",")
            if "K" in flags and pts not in ("", "N/A"):
                times.append(float(pts))
                if len(times) >= count:
                    break
            if time.monotonic() > deadline:
                break
    finally:
        proc.kill()
        proc.wait(timeout=5)
    return times


def rtsp_request(port: int, method: str, path: str = "/stream") -> str:
    """One raw RTSP request; the response's status line and headers."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        url = f"rtsp://127.0.0.1:{port}{path}"
        s.sendall(f"{method} {url} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    return data.decode(errors="replace")
