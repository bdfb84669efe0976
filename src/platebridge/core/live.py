"""Fan-out of one camera's live fragmented MP4 to many viewers, bounded. Pure (asyncio only).

One :class:`LiveFanout` per camera (the POD: fed by ffmpeg's stdout; the portal: fed by the
POD's ``/live`` body). A :class:`Subscription` is an async iterator of messages:

- ``bytes``: the init segment first, then the **keyframe cache** (everything since the last
  keyframe fragment, so a picture starts at once), then live fragments, one per message;
- :class:`Notice` ``("skipped")``: the viewer fell behind by more than its byte budget, its
  queue was dropped and it resumes at the next keyframe fragment (which follows the notice);
- :class:`Notice` ``("restarted", codecs=...)``: the source restarted (a new init segment was
  set); the new init segment follows, then its fragments.

Iteration ends when the subscription is closed; :attr:`Subscription.close_reason` says why
(``too_slow``, ``closed`` when the viewer closed it, or the reason given to
:meth:`LiveFanout.close`). Memory: the cache is at most ``cache_limit`` bytes (beyond that it
is dropped and new viewers wait for the next keyframe) and each viewer's queue at most its
budget, plus the backlog it was given on joining, plus one fragment.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from platebridge.core.aio import within
from platebridge.core.fmp4 import Fragment

DEFAULT_BUDGET = 4 * 1024 * 1024
#: 20 s of 4 Mbit/s: the keyframe cache of a long-GOP camera fits.
DEFAULT_CACHE_LIMIT = 12 * 1024 * 1024
#: More skips than this within :data:`SKIP_WINDOW` seconds close the viewer as ``too_slow``.
DEFAULT_MAX_SKIPS = 3
SKIP_WINDOW = 60.0
TOO_SLOW = "too_slow"


@dataclass(frozen=True)
class Notice:
    reason: Literal["skipped", "restarted"]
    codecs: str = ""  # the new codecs string, for "restarted"
    skips: int = 0  # the viewer's skips so far, for "skipped"


Message = bytes | Notice


class Subscription:
    """One viewer: ``async for message in subscription`` (see the module docstring).

    Also an async context manager that unsubscribes on exit. Never constructed directly.
    """

    def __init__(self, fanout: LiveFanout, budget: int) -> None:
        self._fanout = fanout
        self.budget = budget
        self._queue: deque[Message] = deque()
        self.queued_bytes = 0
        self._limit = budget
        self._wake = asyncio.Event()
        self.close_reason: str | None = None
        self.waiting_keyframe = True
        self.skips = 0
        self._skip_times: deque[float] = deque()
        self.sent_bytes = 0

    @property
    def closed(self) -> bool:
        return self.close_reason is not None

    def _put(self, message: Message) -> None:
        self._queue.append(message)
        if isinstance(message, bytes):
            self.queued_bytes += len(message)
        self._wake.set()

    def _backlog(self, messages: list[bytes]) -> None:
        """The init segment and the keyframe cache on joining: allowed beyond the budget."""
        for message in messages:
            self._put(message)
        self._limit = self.budget + self.queued_bytes

    def _drop_queue(self) -> None:
        self._queue.clear()
        self.queued_bytes = 0
        self._limit = self.budget

    def _offer(self, fragment: Fragment, now: float) -> None:
        if self.waiting_keyframe:
            if not fragment.keyframe:
                return
            self.waiting_keyframe = False
            if self.skips:
                self._put(Notice("skipped", skips=self.skips))
        elif self._queue and self.queued_bytes + len(fragment.data) > self._limit:
            self._drop_queue()
            self.skips += 1
            self._skip_times.append(now)
            while self._skip_times and now - self._skip_times[0] > SKIP_WINDOW:
                self._skip_times.popleft()
            if len(self._skip_times) > self._fanout.max_skips:
                self._end(TOO_SLOW)
                return
            self.waiting_keyframe = True
            self._offer(fragment, now)
            return
        self._put(fragment.data)

    def _restart(self, init: bytes, codecs: str) -> None:
        self._drop_queue()
        self._put(Notice("restarted", codecs=codecs))
        self._put(init)
        self.waiting_keyframe = True

    def _end(self, reason: str) -> None:
        if self.close_reason is None:
            self.close_reason = reason
            self._drop_queue()
            self._wake.set()
            self._fanout._remove(self)

    def close(self) -> None:
        """Unsubscribe (the viewer left)."""
        self._end("closed")

    def __aiter__(self) -> Subscription:
        return self

    def _pop(self) -> Message:
        message = self._queue.popleft()
        if isinstance(message, bytes):
            self.queued_bytes -= len(message)
            self.sent_bytes += len(message)
            if self.queued_bytes <= self.budget:
                self._limit = self.budget
        return message

    async def __anext__(self) -> Message:
        while not self._queue:
            if self.close_reason is not None:
                raise StopAsyncIteration
            self._wake.clear()
            await self._wake.wait()
        return self._pop()

    async def next_batch(self, limit: int) -> Message:
        """The next message; a fragment is joined with the fragments queued right behind it,
        up to ``limit`` bytes in all (never fewer than one). A viewer that is behind — the
        keyframe cache on joining, up to ~250 fragments — gets a few large messages instead
        of one per frame: one send and one ``appendBuffer`` each instead of hundreds. An init
        segment and notices stay messages of their own. Raises ``StopAsyncIteration`` at the
        end, like iterating."""
        message = await self.__anext__()
        init = self._fanout.init
        if not isinstance(message, bytes) or message is init:
            return message
        parts, size = [message], len(message)
        while self._queue:
            nxt = self._queue[0]
            if not isinstance(nxt, bytes) or nxt is init or size + len(nxt) > limit:
                break
            self._pop()
            parts.append(nxt)
            size += len(nxt)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class LiveFanout:
    """One source, many bounded subscribers, a keyframe cache for instant start.

    ``on_idle`` is called when the last subscriber leaves (the portal closes its upstream a
    few seconds later). After :meth:`close` the fanout can be fed again (a new source).
    """

    def __init__(
        self,
        *,
        budget: int = DEFAULT_BUDGET,
        cache_limit: int = DEFAULT_CACHE_LIMIT,
        max_skips: int = DEFAULT_MAX_SKIPS,
        clock: Callable[[], float] = time.monotonic,
        on_idle: Callable[[], None] | None = None,
    ) -> None:
        self.budget = budget
        self.cache_limit = cache_limit
        self.max_skips = max_skips
        self._clock = clock
        self._on_idle = on_idle
        self.init: bytes | None = None
        self.codecs = ""
        self._cache: list[bytes] = []
        self._cache_bytes = 0
        self._subs: set[Subscription] = set()
        self._ready = asyncio.Event()
        self.fragments_in = 0
        self.bytes_in = 0
        self.keyframes_in = 0
        self.last_keyframe_at: float | None = None
        #: Seconds between the last two keyframe fragments (wall clock), None until measured.
        self.keyframe_interval: float | None = None

    @property
    def subscriber_count(self) -> int:
        return len(self._subs)

    @property
    def cache_bytes(self) -> int:
        return self._cache_bytes

    @property
    def ready(self) -> bool:
        return self.init is not None

    async def wait_ready(self, seconds: float) -> bool:
        """True once an init segment is set (within ``seconds``)."""
        try:
            await within(self._ready.wait(), seconds)
        except TimeoutError:
            return False
        return True

    def set_init(self, init: bytes, codecs: str) -> None:
        """A (new) init segment; if one was set before, subscribers get ``restarted`` + it."""
        restarted = self.init is not None
        self.init, self.codecs = init, codecs
        self._clear_cache()
        self.last_keyframe_at = None
        for sub in list(self._subs):
            if restarted:
                sub._restart(init, codecs)
            else:
                sub._backlog([init])
        self._ready.set()

    def push(self, fragment: Fragment) -> None:
        """A media fragment, delivered to every subscriber (ignored before an init segment)."""
        if self.init is None:
            return
        now = self._clock()
        self.fragments_in += 1
        self.bytes_in += len(fragment.data)
        if fragment.keyframe:
            self.keyframes_in += 1
            if self.last_keyframe_at is not None:
                self.keyframe_interval = now - self.last_keyframe_at
            self.last_keyframe_at = now
            self._clear_cache()
            self._cache.append(fragment.data)
            self._cache_bytes = len(fragment.data)
        elif self._cache:
            if self._cache_bytes + len(fragment.data) > self.cache_limit:
                self._clear_cache()  # new viewers wait for the next keyframe
            else:
                self._cache.append(fragment.data)
                self._cache_bytes += len(fragment.data)
        for sub in list(self._subs):
            sub._offer(fragment, now)

    def _clear_cache(self) -> None:
        self._cache = []
        self._cache_bytes = 0

    def subscribe(self, budget: int | None = None) -> Subscription:
        """A new viewer: gets the init segment and the keyframe cache at once (when there)."""
        sub = Subscription(self, budget or self.budget)
        self._subs.add(sub)
        if self.init is not None:
            sub._backlog([self.init, *self._cache])
            sub.waiting_keyframe = not self._cache
        return sub

    def close(self, reason: str) -> None:
        """End every subscription with ``reason``; forget the init segment and the cache."""
        for sub in list(self._subs):
            sub._end(reason)
        self.init, self.codecs = None, ""
        self._clear_cache()
        self._ready.clear()

    def _remove(self, sub: Subscription) -> None:
        if sub in self._subs:
            self._subs.discard(sub)
            if not self._subs and self._on_idle is not None:
                self._on_idle()
