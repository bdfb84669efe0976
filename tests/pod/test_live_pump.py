"""CameraLive.pump: ffmpeg's stdout into the fanout; it drains to EOF even when unusable."""

from __future__ import annotations

import asyncio

from platebridge.pod.live import CameraLive
from tests.core.test_fmp4 import NON_SYNC, SYNC, VIDEO, box, fragment, init_segment, traf, trex

INIT = init_segment(VIDEO, trexes=(trex(1, NON_SYNC),))
KEY, DELTA = fragment(traf(1, first=SYNC)), fragment(traf(1))


def reader(*chunks: bytes) -> asyncio.StreamReader:
    stream = asyncio.StreamReader()
    for chunk in chunks:
        stream.feed_data(chunk)
    stream.feed_eof()
    return stream


async def test_pump_feeds_the_fanout_and_late_viewers_get_the_cache() -> None:
    live = CameraLive("cam")
    stream = INIT + DELTA + KEY + DELTA + DELTA
    await asyncio.wait_for(live.pump(reader(*(stream[i : i + 7] for i in range(0, 999, 7)))), 5)
    assert live.codecs == "avc1.640028" and live.error is None
    sub = live.fanout.subscribe()
    assert [await anext(sub) for _ in range(4)] == [INIT, KEY, DELTA, DELTA]


async def test_pump_drains_everything_after_a_broken_stream() -> None:
    live = CameraLive("cam")
    garbage = box("mdat", b"x" * 10)  # media before any init segment
    stream = reader(garbage, b"y" * 1_000_000, INIT, KEY)
    await asyncio.wait_for(live.pump(stream), 5)
    assert stream.at_eof()  # ffmpeg would never block on a full pipe
    assert live.error is not None and live.error.startswith("live output unreadable")
    assert not live.fanout.ready


async def test_unplayable_codec_is_reported_not_served() -> None:
    live = CameraLive("cam")
    await asyncio.wait_for(live.pump(reader(init_segment(VIDEO.replace(b"avc1", b"mp4v")))), 5)
    assert live.error is not None and "'mp4v'" in live.error and not live.fanout.ready


async def test_end_run_ends_viewers_and_forgets_the_stream() -> None:
    live = CameraLive("cam")
    await live.pump(reader(INIT, KEY))
    sub = live.fanout.subscribe()
    live.end_run("camera_error")
    assert [m async for m in sub] == [] and sub.close_reason == "camera_error"
    assert not live.fanout.ready and live.last_data is None
