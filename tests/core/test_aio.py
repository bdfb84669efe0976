"""``core.aio.within``: a time limit that never swallows a cancellation, and the rule that
``src/`` uses it instead of ``asyncio.wait_for`` (whose 3.11 version does)."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import pytest

from platebridge.core.aio import within

SRC = Path(__file__).resolve().parents[2] / "src" / "platebridge"


async def _cancel_as_it_completes(limit: object) -> tuple[bool, object]:
    """A task awaiting ``future`` under a time limit is cancelled in the same loop step in
    which ``future`` completes. Returns (task cancelled?, its result)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[str] = loop.create_future()

    async def waiter() -> str:
        return await limit(future, 10)  # type: ignore[operator, no-any-return]

    task = asyncio.create_task(waiter())
    await asyncio.sleep(0)  # the task now waits
    future.set_result("sent")
    task.cancel()
    try:
        return False, await task
    except asyncio.CancelledError:
        return True, None


def test_a_cancellation_as_the_awaited_completes_is_kept() -> None:
    assert asyncio.run(_cancel_as_it_completes(within)) == (True, None)


def test_asyncio_wait_for_before_3_12_loses_it() -> None:
    """Why ``within`` exists: before 3.12 the same race with ``asyncio.wait_for`` returns the
    result and the task is not cancelled (a loop cancelled this way keeps going)."""
    lost = (False, "sent") if sys.version_info < (3, 12) else (True, None)
    assert asyncio.run(_cancel_as_it_completes(asyncio.wait_for)) == lost


def test_within_times_out_and_cancels_the_awaited() -> None:
    async def go() -> bool:
        started = asyncio.Event()
        cancelled = asyncio.Event()

        async def slow() -> None:
            started.set()
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                cancelled.set()
                raise

        with pytest.raises(TimeoutError):
            await within(slow(), 0.01)
        return started.is_set() and cancelled.is_set()

    assert asyncio.run(go())


def test_within_returns_the_result_and_none_means_no_limit() -> None:
    async def go() -> tuple[int, int]:
        async def value() -> int:
            await asyncio.sleep(0)
            return 7

        return await within(value(), 1), await within(value(), None)

    assert asyncio.run(go()) == (7, 7)


def test_src_does_not_use_asyncio_wait_for() -> None:
    offenders = [
        f"{path.relative_to(SRC)}:{n}"
        for path in sorted(SRC.rglob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"\basyncio\.wait_for\(|\bfrom asyncio import .*\bwait_for\b", line)
    ]
    assert offenders == [], f"use platebridge.core.aio.within: {offenders}"
