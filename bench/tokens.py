"""Benchmark 6: stream token verification per second on one core (stdlib HMAC-SHA256).

Baseline (same run): a bare loop of ``hmac.new(key, payload, sha256).digest()`` +
``hmac.compare_digest`` over the same payload — the cryptographic floor. The ratio shows what
the parsing, base64 and claim checks around it cost.

    .venv/bin/python -m bench.tokens [--seconds 1.0] [--reps 5] [--smoke]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench._common import median, ratio, table
from bench._common import write_result as _write
from platebridge.core.tokens import StreamClaims, sign_stream_token, verify_stream_token

SECRET = "bench-stream-secret-0123456789abcdef"


def rate(fn: Callable[[], object], seconds: float) -> float:
    """Calls per second of ``fn`` over about ``seconds`` (batches of 1,000)."""
    n = 0
    t0 = time.perf_counter()
    deadline = t0 + seconds
    while True:
        for _ in range(1000):
            fn()
        n += 1000
        now = time.perf_counter()
        if now >= deadline or n >= 50_000_000:
            return n / (now - t0)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description="stream token benchmark")
    p.add_argument("--seconds", type=float, default=1.0)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    if args.smoke:
        args.seconds, args.reps = 0.05, 1

    claims = StreamClaims("user-0001", "main-gate-pod", "gate-camera-1", int(time.time()) + 3600)
    token = sign_stream_token(claims, SECRET)
    payload_b64 = token.split(".")[0]
    key, msg = SECRET.encode(), payload_b64.encode()
    expected = hmac.new(key, msg, hashlib.sha256).digest()
    assert verify_stream_token(token, SECRET) == claims

    def bare() -> bool:
        return hmac.compare_digest(hmac.new(key, msg, hashlib.sha256).digest(), expected)

    cases: dict[str, Callable[[], object]] = {
        "bare hmac+compare_digest (baseline)": bare,
        "verify_stream_token": lambda: verify_stream_token(token, SECRET),
        "sign_stream_token": lambda: sign_stream_token(claims, SECRET),
    }
    runs: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.reps):  # interleaved, so noise hits every case alike
        for name, fn in cases.items():
            runs[name].append(rate(fn, args.seconds))
    base = median(runs["bare hmac+compare_digest (baseline)"])
    results = {
        name: {
            "per_s": median(r),
            "us_each": 1e6 / median(r),
            "vs_baseline": ratio(median(r), base),
        }
        for name, r in runs.items()
    }
    rows = [[n, r["per_s"], r["us_each"], r["vs_baseline"]] for n, r in results.items()]
    text = table(["operation (1 core)", "per s", "us each", "x baseline"], rows)
    print(text)
    out = {
        "config": {"seconds": args.seconds, "reps": args.reps, "token_bytes": len(token)},
        "results": results,
        "table": text,
        "targets": [
            {
                "target": "token verification: sanity line (no numeric target)",
                "value": f"{results['verify_stream_token']['per_s']:,.0f}/s",
                "met": True,
            }
        ],
    }
    path = _write("tokens", out, args.out)
    print(f"wrote {path}")
    return json.loads(path.read_text())


if __name__ == "__main__":
    main()
