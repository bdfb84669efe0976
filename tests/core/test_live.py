"""core.live.LiveFanout: order, keyframe cache, slow viewers skipped then closed, bounded memory."""

from __future__ import annotations

import asyncio

from platebridge.core.fmp4 import Fragment
from platebridge.core.live import TOO_SLOW, LiveFanout, Message, Notice, Subscription

INIT = b"ftyp+moov"


def frag(n: int, key: bool = False, size: int = 10) -> Fragment:
    return Fragment(f"{'K' if key else 'f'}{n}:".encode().ljust(size, b"."), key)


def drain(sub: Subscription) -> list[Message]:
    """Everything queued right now, as the iterator would yield it (without awaiting)."""
    out: list[Message] = []
    while sub._queue:
        message = sub._queue.popleft()
        if isinstance(message, bytes):
            sub.queued_bytes -= len(message)
        out.append(message)
    return out


async def test_fanout_order_for_all_subscribers() -> None:
    fan = LiveFanout()
    early = fan.subscribe()  # before the init segment: waits for it and for a keyframe
    fan.set_init(INIT, "avc1.640028")
    frags = [frag(0, key=True), frag(1), frag(2), frag(3, key=True), frag(4)]
    second = fan.subscribe()
    for f in frags:
        fan.push(f)
    got = [await anext(early) for _ in range(6)]
    assert got == [INIT, *(f.data for f in frags)]
    # second joined after the init but before any keyframe: init, then from the first keyframe
    assert [await anext(second) for _ in range(6)] == got


async def test_late_joiner_gets_init_and_keyframe_cache_at_once() -> None:
    fan = LiveFanout()
    fan.set_init(INIT, "avc1.640028")
    for f in [frag(0), frag(1, key=True), frag(2), frag(3), frag(4, key=True), frag(5)]:
        fan.push(f)
    assert fan.cache_bytes == 20  # K4 and f5 only: the cache is cleared at each keyframe
    late = fan.subscribe()
    assert [await anext(late) for _ in range(3)] == [INIT, frag(4, True).data, frag(5).data]
    fan.push(frag(6))
    assert await anext(late) == frag(6).data


async def test_slow_subscriber_skips_to_next_keyframe_with_notice() -> None:
    fan = LiveFanout(budget=50)
    fan.set_init(INIT, "avc1")
    fast, slow = fan.subscribe(), fan.subscribe()
    sent: list[bytes] = []
    for n in range(12):  # keyframe every 4 fragments; the slow one never reads
        f = frag(n, key=n % 4 == 0)
        fan.push(f)
        sent.append(f.data)
        drain(fast)
    assert slow.skips == 1 and not slow.closed
    got = drain(slow)
    assert got[0] == Notice("skipped", skips=1)
    assert got[1:] == sent[8:]  # resumed at keyframe 8; the queue never exceeded its budget
    assert fast.skips == 0


async def test_too_many_skips_close_too_slow() -> None:
    now = [0.0]
    fan = LiveFanout(budget=30, max_skips=2, clock=lambda: now[0])
    fan.set_init(INIT, "avc1")
    slow = fan.subscribe()
    for n in range(60):
        now[0] += 0.1
        fan.push(frag(n, key=n % 3 == 0))
        if slow.closed:
            break
    assert slow.close_reason == TOO_SLOW and slow.skips == 3
    assert fan.subscriber_count == 0
    assert [m async for m in slow] == []  # closed: queue dropped, iteration ends


async def test_skips_spread_over_minutes_do_not_close() -> None:
    now = [0.0]
    fan = LiveFanout(budget=30, max_skips=2, clock=lambda: now[0])
    fan.set_init(INIT, "avc1")
    sub = fan.subscribe()
    for n in range(400):  # one second per fragment; every 40 s the viewer stalls for 4 s
        now[0] += 1.0
        fan.push(frag(n, key=n % 3 == 0))
        if n % 40 >= 4:
            drain(sub)
    assert not sub.closed and sub.skips == 10


async def test_restart_sends_notice_then_new_init() -> None:
    fan = LiveFanout()
    fan.set_init(INIT, "avc1.640028")
    sub = fan.subscribe()
    fan.push(frag(0, key=True))
    fan.push(frag(1))
    assert drain(sub) == [INIT, frag(0, True).data, frag(1).data]
    fan.push(frag(2))  # not read before the restart: dropped
    fan.set_init(b"new-init", "hvc1.1.6.L93.B0")
    fan.push(frag(3))  # not a keyframe: the restarted viewer waits for one
    fan.push(frag(4, key=True))
    assert drain(sub) == [
        Notice("restarted", codecs="hvc1.1.6.L93.B0"),
        b"new-init",
        frag(4, True).data,
    ]
    assert fan.codecs == "hvc1.1.6.L93.B0"


async def test_close_ends_all_subscriptions_and_wakes_readers() -> None:
    idle: list[bool] = []
    fan = LiveFanout(on_idle=lambda: idle.append(True))
    subs = [fan.subscribe() for _ in range(3)]
    readers = [asyncio.create_task(_collect(s)) for s in subs]
    await asyncio.sleep(0)
    fan.close("camera_error")
    results = await asyncio.wait_for(asyncio.gather(*readers), 2)
    assert results == [[], [], []]
    assert {s.close_reason for s in subs} == {"camera_error"}
    assert idle == [True] and not fan.ready
    assert not await fan.wait_ready(0.01)
    fan.set_init(INIT, "avc1")  # usable again for a new source
    assert await fan.wait_ready(0.01)


async def _collect(sub: Subscription) -> list[Message]:
    return [m async for m in sub]


async def test_subscription_context_manager_unsubscribes() -> None:
    fan = LiveFanout()
    async with fan.subscribe() as sub:
        assert fan.subscriber_count == 1
    assert fan.subscriber_count == 0 and sub.close_reason == "closed"


async def test_memory_bounded_under_producer_flood() -> None:
    """A producer far faster than a stuck viewer: queues and cache stay within their limits."""
    budget, cache_limit, size = 64 * 1024, 256 * 1024, 4096
    fan = LiveFanout(budget=budget, cache_limit=cache_limit, max_skips=10**9)
    fan.set_init(INIT, "avc1")
    stuck = [fan.subscribe() for _ in range(5)]
    reader = fan.subscribe()
    peak_queue = peak_cache = 0
    for n in range(20_000):
        fan.push(frag(n, key=n % 250 == 0, size=size))  # keyframe cache would reach 1 MiB
        peak_queue = max(peak_queue, *(s.queued_bytes for s in stuck))
        peak_cache = max(peak_cache, fan.cache_bytes)
        if n % 7 == 0:
            drain(reader)
    assert peak_queue <= budget + size
    assert peak_cache <= cache_limit
    assert all(s.skips > 10 for s in stuck) and reader.skips == 0
    assert all(len(s._queue) <= budget // size + 2 for s in stuck)
    late = fan.subscribe()  # cache overflowed at this GOP: the late viewer waits for a keyframe
    assert fan.cache_bytes == 0 and late.waiting_keyframe and drain(late) == [INIT]


async def test_next_batch_joins_queued_fragments_but_not_init_or_notices() -> None:
    fan = LiveFanout(budget=10_000)
    fan.set_init(INIT, "avc1.640028")
    frags = [frag(0, key=True), frag(1), frag(2), frag(3), frag(4)]
    for f in frags:
        fan.push(f)
    late = fan.subscribe()  # init + the keyframe cache (5 fragments of 10 bytes) at once
    assert await late.next_batch(1024) == INIT  # the init segment is a message of its own
    assert await late.next_batch(35) == b"".join(f.data for f in frags[:3])  # up to the limit
    assert late.queued_bytes == 20 and late.sent_bytes == len(INIT) + 30
    assert await late.next_batch(5) == frags[3].data  # never fewer than one fragment
    fan.set_init(b"ftyp+moov2", "avc1.640028")  # restarted: the queue is dropped
    fan.push(frag(5, key=True))
    fan.push(frag(6))
    assert await late.next_batch(1024) == Notice("restarted", codecs="avc1.640028")
    assert await late.next_batch(1024) == b"ftyp+moov2"
    assert await late.next_batch(1024) == frag(5, key=True).data + frag(6).data
    assert late.queued_bytes == 0
    late.close()
    try:
        await late.next_batch(1024)
    except StopAsyncIteration:
        pass
    else:
        raise AssertionError("a closed subscription ends the batches")


async def test_next_batch_stops_at_a_skip_notice() -> None:
    fan = LiveFanout(budget=25, max_skips=10)
    fan.set_init(INIT, "avc1.640028")
    sub = fan.subscribe()
    assert await sub.next_batch(1024) == INIT
    for n in range(4):  # 40 bytes > the budget of 25: the queue is dropped, wait for a keyframe
        fan.push(frag(n, key=n == 0))
    fan.push(frag(4, key=True))
    fan.push(frag(5))
    assert await sub.next_batch(1024) == Notice("skipped", skips=1)
    assert await sub.next_batch(1024) == frag(4, key=True).data + frag(5).data
