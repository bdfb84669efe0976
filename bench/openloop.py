"""An open-loop (constant offered rate) load generator for the benchmarks.

``wrk`` is closed-loop: each connection sends its next request when the previous answer is in,
so it measures a saturated server and its p99 is queueing by construction. A latency target
("p99 < 50 ms at 2,000/s") is about a fixed *offered* rate: requests are scheduled at
``t0 + i / rate`` whatever the answers do, and a request's latency runs from its scheduled
time (a request that waited for a free connection counts its wait: no coordinated omission).

Python with uvloop costs ~40 µs a request on the client, so one process offers a few thousand
requests a second; the same generator against a trivial route (``/health``) at the same rate
is the floor every figure is compared with.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import cast

import uvloop

from bench._common import percentile

#: ``op(i)`` does request ``i`` (on the caller's own connection or pool) and returns whether
#: it succeeded.
Op = Callable[[int], Awaitable[bool]]


@dataclass
class RateResult:
    offered: float
    achieved: float
    sent: int
    errors: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    #: time from the scheduled instant to the send (client-side queueing: all connections busy)
    late_p99_ms: float
    lat_ms: list[float] = field(default_factory=list, repr=False)

    def row(self) -> dict[str, float | int]:
        return {
            "offered": self.offered,
            "achieved": round(self.achieved, 1),
            "sent": self.sent,
            "errors": self.errors,
            "p50_ms": round(self.p50_ms, 2),
            "p99_ms": round(self.p99_ms, 2),
            "max_ms": round(self.max_ms, 2),
            "late_p99_ms": round(self.late_p99_ms, 2),
        }


async def run_open_loop(ops: Sequence[Op], rate: float, duration: float) -> RateResult:
    """Offer ``rate`` requests/s for ``duration`` s over ``len(ops)`` concurrent lanes (each a
    connection); a request scheduled while every lane is busy waits for the first free one."""
    n = max(1, int(rate * duration))
    queue: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()
    lat: list[float] = []
    late: list[float] = []
    errors = 0

    async def lane(op: Op) -> None:
        nonlocal errors
        while True:
            item = await queue.get()
            if item is None:
                return
            i, due = item
            late.append(time.perf_counter() - due)
            try:
                ok = await op(i)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                ok = False
            lat.append(time.perf_counter() - due)
            if not ok:
                errors += 1

    lanes = [asyncio.create_task(lane(op)) for op in ops]
    t0 = time.perf_counter() + 0.01
    sent = 0
    while sent < n:
        now = time.perf_counter()
        due_count = min(n, int((now - t0) * rate) + 1)
        while sent < due_count:
            queue.put_nowait((sent, t0 + sent / rate))
            sent += 1
        await asyncio.sleep(0.0005)
    for _ in lanes:
        queue.put_nowait(None)
    await asyncio.wait_for(asyncio.gather(*lanes), timeout=60)
    wall = time.perf_counter() - t0
    ms = [x * 1000 for x in lat]
    return RateResult(
        offered=rate,
        achieved=len(lat) / wall,
        sent=sent,
        errors=errors,
        p50_ms=percentile(ms, 50),
        p99_ms=percentile(ms, 99),
        max_ms=max(ms) if ms else float("nan"),
        late_p99_ms=percentile([x * 1000 for x in late], 99),
        lat_ms=ms,
    )


class _Lane(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, driven by callbacks (no task, no future per request:
    a stream-based client cost ~100 µs a request on a loaded machine and became the
    bottleneck). Answers must carry ``Content-Length`` (the portal's do)."""

    def __init__(self, gen: _HttpLoad) -> None:
        self.gen = gen
        self.buf = b""
        self.due = 0.0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def send(self, i: int, due: float) -> None:
        assert self.transport is not None
        self.due = due
        self.gen.late.append(time.perf_counter() - due)
        self.transport.write(self.gen.requests[i % len(self.gen.requests)])

    def data_received(self, data: bytes) -> None:
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buf[:end].lower()
        at = head.find(b"\r\ncontent-length:")
        length = 0
        if at >= 0:
            stop = head.find(b"\r\n", at + 2)
            length = int(head[at + 17 : stop if stop >= 0 else None])
        total = end + 4 + length
        if len(self.buf) < total:
            return
        status = int(head[9:12])
        self.buf = self.buf[total:]
        self.gen.done(self, 200 <= status < 300)

    def connection_lost(self, exc: Exception | None) -> None:
        self.gen.lost(self)


class _HttpLoad:
    """Schedule request ``i`` at ``t0 + i / rate`` onto the first idle lane."""

    def __init__(self, requests: Sequence[bytes], rate: float, duration: float) -> None:
        self.requests, self.rate = requests, rate
        self.n = max(1, int(rate * duration))
        self.pending: deque[tuple[int, float]] = deque()
        #: FIFO: every lane gets used, none idles past the server's keep-alive timeout
        self.idle: deque[_Lane] = deque()
        self.lat: list[float] = []
        self.late: list[float] = []
        self.errors = 0
        self.sent = 0
        self.t0 = 0.0
        self.finished: asyncio.Future[None] | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> asyncio.Future[None]:
        self.loop = loop
        self.finished = loop.create_future()
        self.t0 = time.perf_counter() + 0.01
        loop.call_later(0.01, self.tick)
        return self.finished

    def tick(self) -> None:
        due_count = min(self.n, int((time.perf_counter() - self.t0) * self.rate) + 1)
        while self.sent < due_count:
            self.pending.append((self.sent, self.t0 + self.sent / self.rate))
            self.sent += 1
        while self.pending and self.idle:
            self.idle.popleft().send(*self.pending.popleft())
        if self.sent < self.n:
            self.loop.call_later(0.0005, self.tick)

    def done(self, lane: _Lane, ok: bool) -> None:
        self.lat.append(time.perf_counter() - lane.due)
        if not ok:
            self.errors += 1
        if self.pending:
            lane.send(*self.pending.popleft())
        else:
            self.idle.append(lane)
        self._check()

    def lost(self, lane: _Lane) -> None:
        if lane in self.idle:  # closed while idle (keep-alive timeout): no request lost
            self.idle.remove(lane)
            return
        if self.finished is not None and not self.finished.done():
            self.errors += 1  # closed with a request in flight
            self.lat.append(time.perf_counter() - lane.due)
            self._check()

    def _check(self) -> None:
        if len(self.lat) >= self.n and self.finished is not None and not self.finished.done():
            self.finished.set_result(None)


async def http_open_loop(
    targets: Sequence[tuple[str, int]],
    requests: Sequence[bytes],
    *,
    rate: float,
    duration: float,
    connections: int,
) -> RateResult:
    """``connections`` lanes spread round-robin over ``targets`` (host, port): with two
    portal processes on two ports each gets half the lanes and about half the load."""
    loop = asyncio.get_running_loop()
    gen = _HttpLoad(requests, rate, duration)
    lanes: list[_Lane] = []
    for k in range(connections):
        host, port = targets[k % len(targets)]
        _t, lane = await loop.create_connection(lambda: _Lane(gen), host, port)
        lanes.append(lane)
    gen.idle = deque(lanes)
    try:
        await asyncio.wait_for(gen.start(loop), timeout=duration + 60)
    finally:
        for lane in lanes:
            if lane.transport is not None:
                lane.transport.close()
    wall = time.perf_counter() - gen.t0
    ms = [x * 1000 for x in gen.lat]
    return RateResult(
        offered=rate,
        achieved=len(ms) / wall,
        sent=gen.sent,
        errors=gen.errors,
        p50_ms=percentile(ms, 50),
        p99_ms=percentile(ms, 99),
        max_ms=max(ms) if ms else float("nan"),
        late_p99_ms=percentile([x * 1000 for x in gen.late], 99),
        lat_ms=ms,
    )


def http_request(method: str, host: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def run(coro: Awaitable[RateResult]) -> RateResult:
    """Run one measurement on uvloop (the generator's own loop must not be the bottleneck)."""

    async def main() -> RateResult:
        return await coro

    return uvloop.run(main())
