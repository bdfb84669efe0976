"""``within``: await with a time limit, the one way the project does it.

``asyncio.wait_for`` on Python 3.11 (the Debian interpreter here) swallows a cancellation that
arrives while the awaited thing has just completed: it returns the result and the task goes on
as if never cancelled (CPython gh-86296, fixed in 3.12 by rewriting ``wait_for`` on
``asyncio.timeout``). A loop that sends with a time limit and is cancelled to stop then keeps
running: the live viewer whose authorisation ended kept being sent video, because its
sending task ignored the cancel and the handler waited for it forever. ``asyncio.timeout``
counts cancellations per task and never loses one; ``within`` is that, as a function.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def within(awaitable: Awaitable[T], seconds: float | None) -> T:
    """``await awaitable``; ``TimeoutError`` (and ``awaitable`` cancelled) after ``seconds``
    (None: no limit). A cancellation of the caller is always propagated."""
    async with asyncio.timeout(seconds):
        return await awaitable
