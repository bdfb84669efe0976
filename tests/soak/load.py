"""Load: N simulated PODs heartbeating (staggered, jittered) + V viewers on the proxy, against a
real portal process, bounded in time. Reports portal RSS/fds at start and end, p50/p99
latencies, errors, the CPU of the generator and of the portal, and checks every POD's
``last_heartbeat`` is current at the end.

    python -m tests.soak.load --pods 2000 --viewers 20 --duration 600 --interval 60   # full
    python -m tests.soak.load --pods 50 --viewers 3 --duration 10 --interval 2        # CI

The generator is one asyncio loop with a small pool of raw keep-alive HTTP/1.1 connections
(pre-encoded requests, no HTTP library on the hot path), so it costs little CPU next to the
portal on the same machine; its own CPU time is reported (``generator``):

* PODs: each heartbeats every ``interval`` * U(0.9, 1.1); the first heartbeats are spread
  evenly over one interval (staggered), so ``pods / interval`` heartbeats/s are offered. A
  scheduler hands due heartbeats to ``--connections`` workers; ``lag`` is how late a heartbeat
  was sent against its schedule (it grows if the generator or the portal falls behind).
* Viewers: like hls.js on a live stream — poll the playlist once per ``EXT-X-TARGETDURATION``
  and fetch each *new* segment once (the newest one on the first poll), one connection each.
  The fake POD serves 1 s segments of ``--segment-kib`` (256 KiB ≈ 2 Mbit/s).

Database: ``--db postgres`` (a fresh database on 127.0.0.1:5432, dropped after) or ``sqlite``.
Everything runs on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import heapq
import json
import os
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import psutil

from tests.faults.procstat import usage
from tests.portal.relay_upstreams import LoopThread
from tests.portal.streaming_support import TS_PACKET, FakePod, heartbeat, portal_process
from tests.support.portal import (
    create_pg_database,
    drop_pg_database,
    migrate,
    new_sqlite_url,
    seed_company,
    sql,
)

REQUEST_TIMEOUT = 30.0
MAX_BODY = 64 * 1024 * 1024


@dataclass
class Series:
    samples: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    def ok(self, seconds: float) -> None:
        self.samples.append(seconds)

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1

    def summary(self) -> dict[str, Any]:
        s = sorted(self.samples)

        def pct(p: float) -> float:
            return round(s[min(len(s) - 1, int(p * len(s)))] * 1000, 1) if s else 0.0

        return {
            "requests": len(s) + sum(self.errors.values()),
            "errors": sum(self.errors.values()),
            "error_kinds": self.errors,
            "p50_ms": pct(0.50),
            "p90_ms": pct(0.90),
            "p99_ms": pct(0.99),
            "max_ms": round(s[-1] * 1000, 1) if s else 0.0,
        }


@dataclass
class LoadResult:
    pods: int
    viewers: int
    duration_s: float
    interval_s: float
    backend: str
    heartbeat: dict[str, Any]
    heartbeat_lag: dict[str, Any]
    heartbeats_offered_per_s: float
    heartbeats_done_per_s: float
    playlist: dict[str, Any]
    segment: dict[str, Any]
    segment_bytes: int
    viewer: dict[str, Any]
    rss_start_kib: int
    rss_end_kib: int
    rss_samples_kib: list[int]
    fds_start: int
    fds_end: int
    stale_pods: int
    registered_pods: int
    cpu: dict[str, float]
    load_average: list[float]
    portal_log_tail: str = ""


class HttpError(Exception):
    """A malformed or unexpected HTTP answer (named in the error counts)."""


class RawConn:
    """One keep-alive HTTP/1.1 connection to 127.0.0.1 sending pre-encoded requests; reads
    Content-Length and chunked bodies. Reconnects on the next request after any failure."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._r: asyncio.StreamReader | None = None
        self._w: asyncio.StreamWriter | None = None

    async def request(self, data: bytes) -> tuple[int, bytes]:
        try:
            return await asyncio.wait_for(self._request(data), REQUEST_TIMEOUT)
        except BaseException:
            self.close()
            raise

    async def _request(self, data: bytes) -> tuple[int, bytes]:
        if self._w is None or self._r is None:
            self._r, self._w = await asyncio.open_connection("127.0.0.1", self.port)
        r, w = self._r, self._w
        w.write(data)
        head = await r.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length, chunked, close = 0, False, False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = value == b"chunked"
            elif name == b"connection":
                close = value == b"close"
        body = await (self._chunked(r) if chunked else r.readexactly(length))
        if close:
            self.close()
        return status, body

    async def _chunked(self, r: asyncio.StreamReader) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            size = int((await r.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
            if size == 0:
                while (await r.readuntil(b"\r\n")) != b"\r\n":  # trailers, then the blank line
                    pass
                return b"".join(parts)
            total += size
            if total > MAX_BODY:
                raise HttpError("body_too_large")
            parts.append((await r.readexactly(size + 2))[:-2])

    def close(self) -> None:
        if self._w is not None:
            self._w.close()
        self._r = self._w = None


def _post(port: int, path: str, key: str, body: dict[str, Any]) -> bytes:
    data = json.dumps(body, separators=(",", ":")).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


def _get(port: int, target: str, auth: dict[str, str]) -> bytes:
    extra = "".join(f"{k}: {v}\r\n" for k, v in auth.items())
    return f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}\r\n".encode()


@dataclass
class Beat:
    """One simulated POD: its pre-encoded heartbeat, interval and where its figures go."""

    request: bytes
    interval: float
    series: Series
    rng: random.Random


async def _heartbeats(
    port: int, beats: list[Beat], t0: float, end: float, connections: int, lag: Series
) -> None:
    """Schedule every POD's heartbeats (first ones spread evenly over one interval, then
    interval * U(0.9, 1.1)) and send them on ``connections`` keep-alive connections."""
    heap: list[tuple[float, int]] = []
    n = len(beats)
    for i, b in enumerate(beats):
        heapq.heappush(heap, (t0 + (i + b.rng.random()) * b.interval / n, i))
    queue: asyncio.Queue[tuple[float, int] | None] = asyncio.Queue()

    async def worker() -> None:
        conn = RawConn(port)
        try:
            while (item := await queue.get()) is not None:
                due, i = item
                beat = beats[i]
                start = time.monotonic()
                lag.ok(max(0.0, start - due))
                try:
                    status, _ = await conn.request(beat.request)
                except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                        TimeoutError, HttpError, ValueError, IndexError) as exc:  # fmt: skip
                    beat.series.error(type(exc).__name__)
                    continue
                if status == 200:
                    beat.series.ok(time.monotonic() - start)
                else:
                    beat.series.error(f"http_{status}")
        finally:
            conn.close()

    workers = [asyncio.create_task(worker()) for _ in range(connections)]
    try:
        while heap:
            due, i = heap[0]
            if due >= end:
                break
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(min(wait, 1.0))
                continue
            heapq.heappop(heap)
            queue.put_nowait((due, i))
            beat = beats[i]
            heapq.heappush(heap, (due + beat.interval * beat.rng.uniform(0.9, 1.1), i))
    finally:
        for _ in workers:
            queue.put_nowait(None)
        await asyncio.gather(*workers, return_exceptions=True)


def _playlist(text: str) -> tuple[float, int, list[str]]:
    """(target duration, media sequence of the first segment, segment URIs)."""
    target, seq, uris = 1.0, 0, []
    for line in text.splitlines():
        if line.startswith("#EXT-X-TARGETDURATION:"):
            target = float(line.split(":", 1)[1])
        elif line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            seq = int(line.split(":", 1)[1])
        elif line and not line.startswith("#"):
            uris.append(line)
    return target, seq, uris


async def _viewer(
    port: int, pod_id: str, auth: dict[str, str], end: float, playlists: Series,
    segments: Series, got: list[int],
) -> None:  # fmt: skip
    """hls.js on a live stream: playlist every target duration, each new segment once."""
    conn = RawConn(port)
    request = _get(port, f"/api/pod/proxy-stream/{quote(pod_id)}?camera_id=gate-camera-1", auth)
    last_seq: int | None = None
    try:
        while time.monotonic() < end:
            start = time.monotonic()
            target = 1.0
            try:
                status, body = await conn.request(request)
                if status != 200:
                    playlists.error(f"playlist_{status}")
                else:
                    playlists.ok(time.monotonic() - start)
                    target, first, uris = _playlist(body.decode())
                    todo = [(first + k, u) for k, u in enumerate(uris)]
                    todo = todo[-1:] if last_seq is None else [t for t in todo if t[0] > last_seq]
                    for seq, uri in todo[-3:]:  # bounded: never more than 3 per poll
                        t = time.monotonic()
                        s_status, s_body = await conn.request(_get(port, _target(uri), auth))
                        if s_status == 200 and s_body:
                            segments.ok(time.monotonic() - t)
                            got[0] += len(s_body)
                        else:
                            segments.error(f"segment_{s_status}")
                        last_seq = seq
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                    TimeoutError, HttpError, ValueError, IndexError) as exc:  # fmt: skip
                playlists.error(type(exc).__name__)
            await asyncio.sleep(max(0.05, target - (time.monotonic() - start)))
    finally:
        conn.close()


def _target(uri: str) -> str:
    parts = urlsplit(uri)
    return parts.path + (f"?{parts.query}" if parts.query else "")


async def _rss_sampler(pid: int, end: float, every: float, out: list[int]) -> None:
    while time.monotonic() < end:
        await asyncio.sleep(min(every, max(0.0, end - time.monotonic()) + 0.01))
        with contextlib.suppress(OSError):
            out.append(usage(pid).rss_kib)


async def _drive(
    port: int, beats: list[Beat], pod_id: str, auth: dict[str, str], a: argparse.Namespace,
    lag: Series, playlists: Series, segments: Series, got: list[int], portal_pid: int,
    rss: list[int],
) -> None:  # fmt: skip
    t0 = time.monotonic()
    end = t0 + a.duration
    tasks = [_heartbeats(port, beats, t0, end, a.connections, lag)]
    tasks += [_viewer(port, pod_id, auth, end, playlists, segments, got) for _ in range(a.viewers)]
    tasks.append(_rss_sampler(portal_pid, end, max(1.0, a.duration / 20), rss))
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=a.duration + REQUEST_TIMEOUT + 60)


async def _seed_pods(db_url: str, site_id: str, n: int) -> list[str]:
    """``n`` pods with their own pod keys (what real PODs use: the heartbeat fast path)."""
    from platebridge.portal.db import Database
    from platebridge.portal.services import admin
    from platebridge.portal.settings import normalize_database_url

    db = Database(normalize_database_url(db_url))
    try:
        async with db.write() as s:
            return [
                (await admin.create_pod(s, site_id, f"soak-pod-{i:05d}", None)).api_key
                for i in range(n)
            ]
    finally:
        await db.dispose()


class BigSegmentPod(FakePod):
    """The fake POD with 1 s segments of a realistic size."""

    def __init__(self, lt: LoopThread, segment_bytes: int) -> None:
        self.segment = TS_PACKET * max(1, segment_bytes // len(TS_PACKET))
        super().__init__(lt)

    async def _route(
        self, path: str, token: str, r: asyncio.StreamReader, w: asyncio.StreamWriter
    ) -> bool:
        pieces = path.strip("/").split("/")
        if len(pieces) == 3 and pieces[0] == "stream" and pieces[1] != "slow-cam":
            return await self._send(w, self.segment, "video/mp2t")
        return await super()._route(path, token, r, w)


def _cpu_of(pid: int) -> float:
    total = 0.0
    with contextlib.suppress(psutil.Error):
        root = psutil.Process(pid)
        for p in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                total += t.user + t.system
    return total


def _machine_busy() -> float:
    t = psutil.cpu_times()
    return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))


def run(a: argparse.Namespace) -> LoadResult:
    if a.db == "postgres":
        db = create_pg_database("pb_soak")
        migrate(db)
    else:
        db = new_sqlite_url()
    lt = LoopThread()
    pod = BigSegmentPod(lt, a.segment_kib * 1024)
    try:
        env = {"PLATEBRIDGE_THROTTLE_HEARTBEAT_PER_IP": "100000",
               "PLATEBRIDGE_OFFLINE_AFTER": str(int(a.interval * 3) + 5)}  # fmt: skip
        with portal_process(db, env) as portal:
            port = int(urlsplit(portal.url).port or 0)
            co = seed_company(db)
            keys = asyncio.run(_seed_pods(db, co.site_id, a.pods))
            heartbeat(portal.url, co, "127.0.0.1", pod.port)  # the viewers' POD
            auth = portal.login(co.email, co.password)
            hb, lag, playlists, segments = Series(), Series(), Series(), Series()
            viewed_hb = Series()
            path = "/api/pod/heartbeat"
            beats = [
                Beat(_post(port, path, key, {
                    "pod_id": f"soak-pod-{i:05d}",
                    "ip_address": f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}",
                    "firmware_version": "1.0.0", "status": "online",
                    "cameras": [{"camera_id": "gate-camera-1", "name": "Gate"}],
                }), a.interval, hb, random.Random(i))
                for i, key in enumerate(keys)
            ]  # fmt: skip
            cams = [{"camera_id": "gate-camera-1", "name": "Gate-Camera-1"}]
            viewed_key = co.pod_auth["Authorization"].split(" ", 1)[1]
            beats.append(Beat(_post(port, path, viewed_key, {
                "pod_id": co.pod_id, "ip_address": "127.0.0.1", "stream_port": pod.port,
                "status": "online", "cameras": cams,
            }), min(a.interval, 10), viewed_hb, random.Random(-1)))  # fmt: skip
            first = usage(portal.proc.pid)
            rss: list[int] = [first.rss_kib]
            got = [0]
            cpu_portal0, busy0, wall0 = _cpu_of(portal.proc.pid), _machine_busy(), time.time()
            proc0, main0 = time.process_time(), time.thread_time()
            started = time.monotonic()
            asyncio.run(_drive(port, beats, co.pod_id, auth, a, lag, playlists, segments, got,
                               portal.proc.pid, rss))  # fmt: skip
            elapsed = time.monotonic() - started
            generator = time.thread_time() - main0
            process = time.process_time() - proc0
            cpu = {
                "generator_s": round(generator, 1),
                "generator_pct_of_one_core": round(100 * generator / elapsed, 1),
                "fake_pod_and_harness_threads_s": round(process - generator, 1),
                "portal_s": round(_cpu_of(portal.proc.pid) - cpu_portal0, 1),
                "portal_pct_of_one_core": round(
                    100 * (_cpu_of(portal.proc.pid) - cpu_portal0) / elapsed, 1),
                "machine_busy_pct": round(
                    100 * (_machine_busy() - busy0)
                    / ((time.time() - wall0) * (os.cpu_count() or 1)), 1),
            }  # fmt: skip
            last = usage(portal.proc.pid)
            cutoff = datetime.now(UTC).timestamp() - a.interval * 1.1 - 5
            rows = sql(db, "SELECT last_heartbeat FROM pods WHERE pod_id LIKE 'soak-pod-%'")
            stale = sum(1 for (ts,) in rows if ts is None or _epoch(ts) < cutoff)
            log_tail = portal.output()[-3000:]
        viewer = Series(playlists.samples + segments.samples, {**playlists.errors})
        for k, v in segments.errors.items():
            viewer.errors[k] = viewer.errors.get(k, 0) + v
        for k, v in viewed_hb.errors.items():
            hb.errors[f"viewed_pod_{k}"] = v
        hb_summary = hb.summary()
        return LoadResult(
            pods=a.pods, viewers=a.viewers, duration_s=round(elapsed, 1), interval_s=a.interval,
            backend=a.db, heartbeat=hb_summary, heartbeat_lag=lag.summary(),
            heartbeats_offered_per_s=round(a.pods / a.interval, 1),
            heartbeats_done_per_s=round(len(hb.samples) / elapsed, 1),
            playlist=playlists.summary(), segment=segments.summary(),
            segment_bytes=len(pod.segment), viewer=viewer.summary(),
            rss_start_kib=first.rss_kib, rss_end_kib=last.rss_kib, rss_samples_kib=rss,
            fds_start=first.fds, fds_end=last.fds, stale_pods=stale, registered_pods=len(rows),
            cpu=cpu, load_average=[round(x, 2) for x in os.getloadavg()], portal_log_tail=log_tail,
        )  # fmt: skip
    finally:
        pod.close()
        lt.stop()
        if a.db == "postgres":
            drop_pg_database(db)


def _epoch(ts: Any) -> float:
    if isinstance(ts, str):
        ts = datetime.fromisoformat(ts)
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return float(ts.timestamp())


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--pods", type=int, default=2000)
    p.add_argument("--viewers", type=int, default=20)
    p.add_argument("--duration", type=float, default=600)
    p.add_argument("--interval", type=float, default=60)
    p.add_argument("--connections", type=int, default=32, help="heartbeat connections")
    p.add_argument("--segment-kib", type=int, default=256)
    p.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    p.add_argument("--out", type=Path, help="write the result as JSON here")
    return p


def passed(result: LoadResult) -> bool:
    return (
        result.heartbeat["errors"] == 0
        and result.viewer["errors"] == 0
        and result.viewer["requests"] > 0
        and result.stale_pods == 0
        and result.registered_pods == result.pods
    )


def main(argv: list[str] | None = None) -> int:
    a = parser().parse_args(argv)
    result = run(a)
    text = json.dumps({**asdict(result), "held": passed(result)}, indent=2)
    print(text)
    if a.out:
        a.out.write_text(text + "\n")
    return 0 if passed(result) else 1


if __name__ == "__main__":
    sys.exit(main())
