"""bench/openloop.py and bench/heartbeat_rate.py cannot rot: the generator keeps its schedule
and charges a stalled answer to every request scheduled behind it; a tiny fixed-rate run
against a real portal on PostgreSQL answers every heartbeat. Figures are not targets here."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bench import heartbeat_rate, openloop
from tests.conftest import require_postgres


async def _server(stall_first: float) -> tuple[asyncio.Server, int]:
    served = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        while True:
            try:
                await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            served += 1
            if served == 1:
                await asyncio.sleep(stall_first)
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def test_open_loop_keeps_the_schedule_and_counts_the_wait() -> None:
    async def main() -> openloop.RateResult:
        server, port = await _server(stall_first=0.3)
        try:
            req = [openloop.http_request("GET", "127.0.0.1", "/", {}, b"")]
            return await openloop.http_open_loop(
                [("127.0.0.1", port)], req, rate=200, duration=1.0, connections=1
            )
        finally:
            server.close()

    r = openloop.run(main())
    assert r.sent == 200 and r.errors == 0
    assert len(r.lat_ms) == 200
    # One connection stalled 300 ms at the start: the ~60 requests scheduled meanwhile waited
    # for it, and an open-loop generator charges that wait to each of them.
    assert r.max_ms >= 290
    assert sum(1 for x in r.lat_ms if x > 100) >= 30
    assert r.late_p99_ms >= 100  # the client-side wait is reported as such


@pytest.mark.e2e
def test_heartbeat_rate_runs_on_postgres(tmp_path: Path) -> None:
    require_postgres()
    argv = ["--pods", "20", "--rates", "50", "--workers", "1", "--duration", "1"]
    argv += ["--connections", "2", "--out", str(tmp_path)]
    args = heartbeat_rate.parse_args(argv)
    result = heartbeat_rate.bench(args)
    kinds = {row["kind"]: row for row in result["rows"]}
    assert set(kinds) == {"health", "heartbeat", "raw"}
    assert kinds["heartbeat"]["errors"] == 0 and kinds["heartbeat"]["sent"] == 50
    assert heartbeat_rate.report(result).startswith("|")
