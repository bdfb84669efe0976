"""Shared helpers for the benchmarks: machine facts, statistics, process watching, the portal
process, wrk, result files and tables.

Every benchmark measures its baseline in the same run and reports ratios: the machine is
shared and noisy, so absolute numbers move between runs while ratios mostly do not.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from tests.support.agent import Agent
from tests.support.portal import portal_process
from tests.support.procs import Proc

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
WRK_REPORT = BENCH / "wrk_report.lua"
RESULTS = BENCH / "results"


# --- machine -----------------------------------------------------------------------------------


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def busy_processes(sample: float = 0.5, top: int = 6) -> list[dict[str, Any]]:
    """The processes using the most CPU right now (what else is running on the machine)."""
    procs = list(psutil.process_iter(["pid", "name"]))
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.cpu_percent(None)
    time.sleep(sample)
    rows = []
    for p in procs:
        with contextlib.suppress(psutil.Error):
            pct = p.cpu_percent(None)
            if pct >= 2.0:
                rows.append({"name": p.info["name"], "cpu_percent": round(pct, 1)})
    rows.sort(key=lambda r: -r["cpu_percent"])
    return rows[:top]


def machine_info() -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "cpu_model": cpu_model(),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "busy_processes": busy_processes(),
    }


# --- statistics --------------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def fmt(value: Any, digits: int = 2) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:.{digits}f}"
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table (also readable on a terminal)."""
    cells = [[fmt(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in cells
    ]
    return "\n".join([line, sep, *body])


def write_result(name: str, data: dict[str, Any], out_dir: Path | None = None) -> Path:
    out_dir = out_dir or RESULTS
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    payload = {"benchmark": name, "machine": machine_info(), **data}
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path


def report(
    name: str,
    out: dict[str, Any],
    load_before: tuple[float, float, float],
    out_dir: Path | None,
    notes: Sequence[str] = (),
) -> dict[str, Any]:
    """The end of a benchmark's ``main``: print ``out["table"]``, ``notes``, the load average
    before and after and each of ``out["targets"]``; write the JSON; return it as stored."""
    load_after = os.getloadavg()
    out["load_average_before_after"] = [load_before, load_after]
    print(out["table"])
    for note in notes:
        print(note)
    print(f"load average before {load_before}, after {load_after}")
    for t in out["targets"]:
        print(f"  {'MET   ' if t['met'] else 'MISSED'} {t['target']}: {t['value']}")
    path = write_result(name, out, out_dir)
    print(f"wrote {path}")
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


# --- processes ---------------------------------------------------------------------------------


@dataclass
class Usage:
    cpu_percent: float  # of ONE core, averaged over the window
    rss_peak_mb: float
    rss_last_mb: float
    exited: bool = False  # the process ended during the window (CPU counted until then)


@dataclass
class ProcWatch:
    """Sample CPU time and RSS of processes (each with its children) until ``stop()``."""

    pids: Mapping[str, int]
    interval: float = 0.25
    include_children: bool = True
    _peak: dict[str, int] = field(default_factory=dict)
    _last: dict[str, int] = field(default_factory=dict)
    _cpu0: dict[str, float] = field(default_factory=dict)
    _cpu_seen: dict[str, float] = field(default_factory=dict)
    _gone: set[str] = field(default_factory=set)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _t0: float = 0.0
    _t1: float = 0.0

    def _tree(self, pid: int) -> list[psutil.Process]:
        try:
            root = psutil.Process(pid)
        except psutil.Error:
            return []
        out = [root]
        if self.include_children:
            with contextlib.suppress(psutil.Error):
                out += root.children(recursive=True)
        return out

    def _cpu(self, pid: int) -> float:
        total = 0.0
        for p in self._tree(pid):
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                total += t.user + t.system
        return total

    def _rss(self, pid: int) -> int:
        total = 0
        for p in self._tree(pid):
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
        return total

    def _sample(self) -> None:
        for name, pid in self.pids.items():
            if not psutil.pid_exists(pid):
                self._gone.add(name)
                continue
            rss = self._rss(pid)
            self._last[name] = rss
            self._peak[name] = max(self._peak.get(name, 0), rss)
            self._cpu_seen[name] = max(self._cpu_seen.get(name, 0.0), self._cpu(pid))

    def start(self) -> ProcWatch:
        self._t0 = time.monotonic()
        self._cpu0 = {n: self._cpu(p) for n, p in self.pids.items()}
        self._sample()

        def loop() -> None:
            while not self._stop.wait(self.interval):
                self._sample()

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> dict[str, Usage]:
        self._stop.set()
        if self._thread:
            self._thread.join()
        self._t1 = time.monotonic()
        self._sample()
        wall = max(self._t1 - self._t0, 1e-9)
        return {
            n: Usage(
                cpu_percent=100 * (self._cpu_seen.get(n, self._cpu0[n]) - self._cpu0[n]) / wall,
                rss_peak_mb=self._peak.get(n, 0) / 2**20,
                rss_last_mb=self._last.get(n, 0) / 2**20,
                exited=n in self._gone,
            )
            for n in self.pids
        }


@dataclass
class Portal:
    base: str
    proc: Proc

    @property
    def pid(self) -> int:
        return self.proc.pid


@contextlib.contextmanager
def run_portal(
    db_url: str, env: Mapping[str, str] | None = None, extra_args: Sequence[str] = ()
) -> Iterator[Portal]:
    """The tests' portal process (``tests.support.portal``) with loopback pod networks."""
    log_dir = Path(tempfile.mkdtemp(prefix="pb-bench-portal-"))
    full_env = {"PLATEBRIDGE_POD_NETWORKS": "127.0.0.0/8", **(env or {})}
    try:
        with portal_process(
            db_url, full_env, log_dir=log_dir, extra_args=extra_args, timeout=60
        ) as portal:
            yield Portal(portal.url, portal.proc)
    finally:
        shutil.rmtree(log_dir, ignore_errors=True)


# --- wrk ---------------------------------------------------------------------------------------


@dataclass
class WrkResult:
    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: dict[str, int]
    non_2xx: int
    bytes: int = 0
    p95_ms: float = float("nan")

    @property
    def mb_per_s(self) -> float:
        return self.bytes / 2**20 / max(self.duration_s, 1e-9)

    @property
    def failed(self) -> int:
        return self.non_2xx + sum(self.errors.values())


def run_wrk(
    url: str,
    script: Path,
    *,
    duration: float,
    connections: int,
    threads: int = 1,
    env: Mapping[str, str] | None = None,
    path: str | None = None,
    auth: str | None = None,
) -> WrkResult:
    """Run wrk with a Lua script whose ``done()`` prints one ``WRKJSON {...}`` line."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed (Debian package wrk; scripts/setup.sh)")
    secs = max(1, round(duration))
    argv = [wrk, "-t", str(threads), "-c", str(connections), "-d", f"{secs}s"]
    argv += ["--timeout", "10s", "-s", str(script), url]
    full_env = dict(os.environ)
    full_env.update(env or {})
    if path is not None:
        full_env["PB_WRK_PATH"] = path
    if auth is not None:
        full_env["PB_WRK_AUTH"] = auth
    out = subprocess.run(
        argv, capture_output=True, text=True, env=full_env, timeout=secs + 60, check=False
    )
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stdout[-2000:]}{out.stderr}")
    d = json.loads(line[len("WRKJSON ") :])
    return WrkResult(
        requests=d["requests"],
        duration_s=d["duration_us"] / 1e6,
        rps=d["requests"] / max(d["duration_us"] / 1e6, 1e-9),
        p50_ms=d["p50_us"] / 1000,
        p90_ms=d["p90_us"] / 1000,
        p99_ms=d["p99_us"] / 1000,
        max_ms=d["max_us"] / 1000,
        errors={k: d[k] for k in ("connect", "read", "write", "timeout")},
        non_2xx=d["status"],
        bytes=d.get("bytes", 0),
        p95_ms=d["p95_us"] / 1000 if "p95_us" in d else float("nan"),
    )


def start_pod_agent(tmp: Path, config: Mapping[str, Any]) -> tuple[Proc, str]:
    """The tests' POD agent (``tests.support.agent``) with ``config``, once every camera in its
    ``/health`` is active. Returns the process and the agent's base URL."""
    agent = Agent(tmp, config, wait=False)
    try:
        agent.wait_health(timeout=30)
        agent.wait_all_active(timeout=60)
    except BaseException:
        agent.close()  # the caller never got it: no orphan agent or ffmpeg
        raise
    return agent.proc, agent.base
