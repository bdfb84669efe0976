"""OnDemand: a substream runs only while it has viewers, and stops `idle` s after the last."""

from __future__ import annotations

import asyncio

from platebridge.pod.substream import OnDemand


class FakeRunner:
    def __init__(self) -> None:
        self.runs = 0
        self.stops = 0
        self._stop = asyncio.Event()

    async def run(self) -> None:
        self.runs += 1
        await self._stop.wait()

    async def stop(self) -> None:
        self.stops += 1
        self._stop.set()

    def rearm(self) -> None:
        self._stop = asyncio.Event()


async def test_starts_with_the_first_viewer_and_stops_after_idle() -> None:
    runner = FakeRunner()
    demand = OnDemand("cam (substream)", runner, idle=0.2)
    assert not demand.running and runner.runs == 0
    await demand.acquire()
    await demand.acquire()
    await asyncio.sleep(0.01)
    assert demand.running and runner.runs == 1 and demand.viewers == 2
    demand.release()
    await asyncio.sleep(0.3)
    assert demand.running  # one viewer is still there
    demand.release()
    await asyncio.sleep(0.1)
    assert demand.running  # the idle time has not passed
    await asyncio.sleep(0.25)
    assert not demand.running and runner.stops == 1


async def test_a_viewer_within_the_idle_time_keeps_it_and_a_later_one_restarts_it() -> None:
    runner = FakeRunner()
    demand = OnDemand("cam", runner, idle=0.2)
    await demand.acquire()
    demand.release()
    await asyncio.sleep(0.1)
    await demand.acquire()  # back before the idle time ran out: the same run
    await asyncio.sleep(0.25)
    assert demand.running and runner.runs == 1 and runner.stops == 0
    demand.release()
    await asyncio.sleep(0.3)
    assert not demand.running
    await demand.acquire()
    await asyncio.sleep(0.01)
    assert demand.running and runner.runs == 2 and demand.starts == 2
    await demand.close()
    assert not demand.running
    await demand.acquire()  # closed: never again
    await asyncio.sleep(0.01)
    assert not demand.running and runner.runs == 2


async def test_release_below_zero_is_harmless() -> None:
    demand = OnDemand("cam", FakeRunner(), idle=0.05)
    demand.release()
    assert demand.viewers == 0 and not demand.running
