"""Viewers who leave mid-segment, 100 times: the portal's open fds, sockets, threads and RSS
do not grow and every upstream connection to the POD is closed. A POD that dies: pod
``offline`` after the threshold, the proxy answers fast with JSON.

(Hanging and trickling PODs → 504 within the timeout, connection freed: see
``tests/portal/test_proxy_faults.py`` and ``tests/portal/test_relay.py``.)"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.faults.procstat import usage
from tests.portal.relay_upstreams import LoopThread
from tests.portal.streaming_support import FakePod, PortalProc, heartbeat, portal_process
from tests.support.portal import SeededCompany, age_pods, new_sqlite_url, seed_company
from tests.support.procs import wait_until

ROUNDS = int(os.environ.get("PB_DISCONNECT_ROUNDS", "100"))


@pytest.fixture(scope="module")
def portal() -> Iterator[PortalProc]:
    env = {"PLATEBRIDGE_STREAM_CONNECT_TIMEOUT": "2", "PLATEBRIDGE_STREAM_READ_TIMEOUT": "3"}
    with portal_process(new_sqlite_url(), env) as p:
        yield p


class KillablePod(FakePod):
    """The scripted POD, plus ``kill()``: stop listening AND drop every open connection, as a
    POD whose process dies does (asyncio's ``Server.close`` keeps accepted connections)."""

    def __init__(self, lt: LoopThread) -> None:
        self.writers: set[asyncio.StreamWriter] = set()
        super().__init__(lt)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.add(writer)
        try:
            await super()._handle(reader, writer)
        finally:
            self.writers.discard(writer)

    def kill(self) -> None:
        self.close()

        async def drop() -> None:
            for writer in list(self.writers):
                writer.transport.abort()

        self._lt.run(drop())


@pytest.fixture
def fake_pod() -> Iterator[KillablePod]:
    lt = LoopThread()
    pod = KillablePod(lt)
    try:
        yield pod
    finally:
        pod.close()
        lt.stop()


def leave_mid_segment(client: httpx.Client, url: str, auth: dict[str, str]) -> None:
    with client.stream("GET", url, params={"camera_id": "slow-cam"}, headers=auth) as r:
        assert r.status_code == 200, r.read()[:200]
        got = 0
        for chunk in r.iter_bytes():
            got += len(chunk)
            if got > 64 * 1024:
                break


def test_hundred_viewers_leaving_mid_segment_leak_nothing(
    portal: PortalProc, fake_pod: FakePod
) -> None:
    seeded = seed_company(portal.db_url)
    heartbeat(portal.url, seeded, "127.0.0.1", fake_pod.port, cameras=("slow-cam",))
    auth = portal.login(seeded.email, seeded.password)
    url = f"{portal.url}/api/pod/proxy-stream/{seeded.pod_id}/segment/seg_1.ts"
    pid = portal.proc.pid
    for _ in range(10):  # warm-up: pools, caches, lazy imports
        with httpx.Client(timeout=10) as c:
            leave_mid_segment(c, url, auth)
    wait_until(lambda: fake_pod.open_connections == 0, timeout=15, what="warm-up closed")
    before = usage(pid)
    for _ in range(ROUNDS):
        with httpx.Client(timeout=10) as c:  # a new TCP connection each time, as a browser tab
            leave_mid_segment(c, url, auth)
    wait_until(lambda: fake_pod.open_connections == 0, timeout=20, what="upstreams closed")
    time.sleep(0.5)
    after = usage(pid)
    assert fake_pod.accepted >= ROUNDS  # each viewer really reached the POD
    assert after.fds <= before.fds + 3, (before, after)
    assert after.sockets <= before.sockets + 3, (before, after)
    assert after.threads <= before.threads + 2, (before, after)
    assert after.rss_kib <= before.rss_kib + 20 * 1024, (before, after)
    # and the portal still serves
    assert httpx.get(f"{portal.url}/health").status_code == 200


def test_killed_pod_goes_offline_and_the_proxy_fails_fast(
    portal: PortalProc, fake_pod: KillablePod
) -> None:
    seeded: SeededCompany = seed_company(portal.db_url)
    heartbeat(portal.url, seeded, "127.0.0.1", fake_pod.port)
    auth = portal.login(seeded.email, seeded.password)
    url = f"{portal.url}/api/pod/proxy-stream/{seeded.pod_id}"
    params = {"camera_id": "gate-camera-1"}
    assert httpx.get(url, params=params, headers=auth, timeout=10).status_code == 200
    fake_pod.kill()  # the POD dies: connections dropped, refused from now on
    start = time.monotonic()
    r = httpx.get(url, params=params, headers=auth, timeout=10)
    assert time.monotonic() - start < 5
    assert r.status_code == 502, (r.status_code, r.headers, r.text[:300])
    assert r.json()["error"] == "upstream_unreachable"
    age_pods(portal.db_url, seeded.company_id, 301)  # past PLATEBRIDGE_OFFLINE_AFTER
    pod = httpx.get(f"{portal.url}/api/pods/{seeded.pod_id}", headers=auth).json()
    assert pod["status"] == "offline"
    start = time.monotonic()
    r = httpx.get(url, params=params, headers=auth, timeout=10)
    assert time.monotonic() - start < 5
    # Offline: refused at once without trying the POD (409 pod_offline), JSON.
    assert (r.status_code, r.json()["error"]) == (409, "pod_offline"), r.text
