"""Sampling profiles of a running process with py-spy (``pip install py-spy``; needs ptrace,
i.e. root or ``kernel.yama.ptrace_scope=0``): where does a portal process spend its time?"""

from __future__ import annotations

import collections
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

from tests.support.procs import VENV_BIN

#: Where the CPU goes, by library: a sample counts for the bucket of the leaf-most frame that
#: matches one of the markers (so pydantic work called by FastAPI counts as pydantic).
COMPONENTS = [
    ("portal: heartbeat digest + redaction", ("heartbeat_digest", "core/redact.py")),
    ("portal: stream access (tokens, SSRF)", ("services/streaming.py", "core/tokens.py")),
    ("portal: playlist rewrite / relay", ("hls_rewrite.py", "portal/relay.py")),
    ("pydantic validation", ("pydantic",)),
    ("sqlalchemy (ORM/Core, pool)", ("sqlalchemy",)),
    ("asyncpg / aiosqlite driver", ("asyncpg", "aiosqlite", "sqlite3")),
    ("httpx / httpcore / h11 / anyio (upstream client)", ("httpx", "httpcore", "h11", "anyio")),
    ("fastapi / starlette", ("fastapi", "starlette")),
    ("uvicorn / httptools", ("uvicorn", "httptools")),
    ("json", ("json/",)),
    ("asyncio event loop", ("asyncio/",)),
]


def py_spy() -> str | None:
    exe = VENV_BIN / "py-spy"
    return str(exe) if exe.exists() else shutil.which("py-spy")


class Profiler:
    """``py-spy record`` of ``pid`` for ``duration`` seconds, in a background thread."""

    def __init__(self, pid: int, duration: float, rate: int = 250) -> None:
        self.out = Path(tempfile.mkdtemp(prefix="pb-pyspy-")) / "stacks.txt"
        self.error: str | None = None
        exe = py_spy()
        self.argv = None
        if exe is None:
            self.error = "py-spy not installed"
            return
        self.argv = [exe, "record", "--pid", str(pid), "--duration", str(max(1, round(duration)))]
        self.argv += ["--rate", str(rate), "--format", "raw", "--nonblocking", "-o", str(self.out)]
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        assert self.argv is not None
        r = subprocess.run(self.argv, capture_output=True, text=True, timeout=120, check=False)
        if r.returncode != 0:
            self.error = (r.stderr or r.stdout)[-500:]

    def start(self) -> Profiler:
        if self.argv is not None:
            self._thread.start()
        return self

    def result(self, top: int = 15) -> dict[str, Any]:
        if self.argv is not None:
            self._thread.join(timeout=150)
        if self.error or not self.out.exists():
            return {"error": self.error or "no profile written"}
        return summarise(self.out.read_text(), top)


def _frame_name(frame: str) -> str:
    # raw py-spy frames look like "function (path/to/file.py:123)"
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    path = where.rsplit(":", 1)[0]
    for marker in ("site-packages/", "src/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{name} ({path})"


def _bucket(frames: list[str]) -> str:
    for frame in reversed(frames):
        for label, markers in COMPONENTS:
            if any(m in frame for m in markers):
                return label
    return "other"


def summarise(collapsed: str, top: int = 15) -> dict[str, Any]:
    self_time: collections.Counter[str] = collections.Counter()
    comp: collections.Counter[str] = collections.Counter()
    total = idle = 0
    for line in collapsed.splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not count_s.isdigit():
            continue
        count = int(count_s)
        total += count
        frames = stack.split(";")
        leaf = frames[-1]
        if ("select" in leaf and ("selectors.py" in leaf or "epoll" in leaf)) or "run_once" in leaf:
            idle += count
        self_time[_frame_name(leaf)] += count
        comp[_bucket(frames)] += count
    pct = 100 / total if total else 0.0
    return {
        "samples": total,
        "idle_percent": round(idle * pct, 1),
        "components_percent": {k: round(v * pct, 1) for k, v in comp.most_common()},
        "top_self_percent": [(k, round(v * pct, 1)) for k, v in self_time.most_common(top)],
    }
