"""Run every benchmark and regenerate the results block of ``docs/performance.md``.

    .venv/bin/python -m bench.run_all                 # full run (about 25 minutes)
    .venv/bin/python -m bench.run_all --only tokens,listing
    .venv/bin/python -m bench.run_all --smoke --no-doc

Each benchmark also writes its own JSON to ``bench/results/`` (gitignored). The doc's block
between ``<!-- bench:begin -->`` and ``<!-- bench:end -->`` is replaced; the prose around it
(analysis, profiles) is kept.
"""

from __future__ import annotations

import argparse
import importlib
import json
import time
import traceback
from pathlib import Path
from typing import Any

from bench._common import REPO, RESULTS, machine_info

ORDER = [
    "tokens",
    "listing",
    "heartbeat",
    "proxy_relay",
    "browser",
    "pod_footprint",
    "alerts",
    "metrics",
]
TITLES = {
    "tokens": "6. Token verification (one core)",
    "listing": "2. Camera listing `GET /api/cameras`",
    "heartbeat": "1. Heartbeat ingestion",
    "proxy_relay": "3. Proxy relay",
    "browser": "4. Browser: time to first frame and live latency",
    "pod_footprint": "5. POD footprint",
    "alerts": "7. Alert evaluation pass over 10,000 pods",
    "metrics": "8. Portal `/metrics` with 10,000 pods",
}
DOC = REPO / "docs" / "performance.md"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def render_block(machine: dict[str, Any], results: dict[str, Any], failed: dict[str, str]) -> str:
    busy = ", ".join(f"{p['name']} {p['cpu_percent']:.0f}%" for p in machine["busy_processes"])
    lines = [
        BEGIN,
        "",
        f"Machine: {machine['cores']} cores · {machine['cpu_model']} · "
        f"Python {machine['python']} · kernel {machine['kernel']}. "
        f"Block written {machine['date']}; each section says when its benchmark finished.",
        f"Load average when the block was written: {machine['loadavg']}; busiest other "
        f"processes then: {busy or 'none above 2 %'}.",
        "",
        "### Targets",
        "",
        "| target | value | |",
        "|---|---|---|",
    ]
    for name in ORDER:
        for t in results.get(name, {}).get("targets", []):
            lines.append(
                f"| {t['target']} | {t['value']} | {'met' if t['met'] else '**MISSED**'} |"
            )
    for name, why in failed.items():
        lines.append(f"| {TITLES[name]} | did not run: {why} | **not measured** |")
    for name in ORDER:
        if name not in results:
            continue
        r = results[name]
        lines += ["", f"### {TITLES[name]}", ""]
        if "config" in r:
            cfg = ", ".join(f"{k}: {v}" for k, v in r["config"].items())
            lines += [f"Config: {cfg}.", ""]
        lines.append(r["table"])
        m = r.get("machine", {})
        if m.get("loadavg"):
            when = f" at {m['date']}" if r.get("earlier_run") or m.get("date") else ""
            lines += ["", f"(finished{when}; load average then: {m['loadavg']})"]
    lines += ["", END]
    return "\n".join(lines)


def update_doc(block: str) -> None:
    text = DOC.read_text() if DOC.exists() else f"# Performance\n\n{BEGIN}\n{END}\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        text = head + block + tail
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    DOC.write_text(text)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description="run all benchmarks")
    p.add_argument("--only", default=",".join(ORDER))
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--no-doc", action="store_true", help="do not touch docs/performance.md")
    p.add_argument(
        "--doc-only", action="store_true", help="rewrite the doc's block from stored JSON only"
    )
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    names = [] if args.doc_only else [n for n in ORDER if n in args.only.split(",")]
    machine = machine_info()
    results: dict[str, Any] = {}
    failed: dict[str, str] = {}
    for name in names:
        print(f"\n=== {name} ===", flush=True)
        t0 = time.monotonic()
        extra = ["--smoke"] if args.smoke else []
        if not args.smoke and name in ("heartbeat", "proxy_relay"):
            extra.append("--profile")
        if args.out is not None:
            extra += ["--out", str(args.out)]
        try:
            results[name] = importlib.import_module(f"bench.{name}").main(extra)
        except (Exception, SystemExit) as exc:
            traceback.print_exc()
            failed[name] = f"{type(exc).__name__}: {exc}"[:300]
        print(f"=== {name}: {time.monotonic() - t0:.0f} s", flush=True)
    # Benchmarks not run this time keep their last results (marked with their own date).
    shown = dict(results)
    for name in ORDER:
        prev = (args.out or RESULTS) / f"{name}.json"
        if name not in shown and name not in failed and prev.exists():
            shown[name] = json.loads(prev.read_text())
            shown[name]["earlier_run"] = True
    block = render_block(machine, {n: shown[n] for n in ORDER if n in shown}, failed)
    if not args.no_doc:
        update_doc(block)
        print(f"updated {DOC}")
    summary = {"machine": machine, "failed": failed, "ran": list(results)}
    out_dir = args.out or RESULTS
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "run_all.json").write_text(json.dumps(summary, indent=2) + "\n")
    return {"results": results, "failed": failed, "block": block}


if __name__ == "__main__":
    main()
