"""/live?stream=sub in-process: the substream's own fan-out, held while its viewer watches; a
camera without a substream serves its main stream; any other ``stream`` is 422."""

from __future__ import annotations

import asyncio
import gc
import json
from pathlib import Path

import pytest

from platebridge.core.fmp4 import Splitter
from platebridge.pod import live_routes
from platebridge.pod.live import CameraLive
from platebridge.pod.substream import OnDemand
from platebridge.pod.supervisor import CameraState
from tests.core.test_fmp4 import SYNC, VIDEO, fragment, init_segment, traf
from tests.pod.test_live_routes import (
    CAM,
    DELTA,
    INIT,
    KEY,
    Message,
    Pod,
    body,
    call,
    ended,
    start,
)
from tests.pod.test_live_routes import token_query as main_query

SUB_INIT = init_segment(VIDEO.replace(b"avc1", b"avc3"))  # tells the two streams apart
SUB_KEY = fragment(traf(1, first=SYNC))


class SubRunner:
    """Stands in for the substream's supervisor: "ffmpeg" feeds the sub's live output."""

    def __init__(self, live: CameraLive) -> None:
        self.live = live
        self.runs = 0
        self._stop = asyncio.Event()

    async def run(self) -> None:
        self.runs += 1
        self.live.begin_run()
        assert self.live.feed(Splitter(), SUB_INIT + SUB_KEY)
        await self._stop.wait()
        self.live.end_run("camera_stopped")

    async def stop(self) -> None:
        self._stop.set()

    def rearm(self) -> None:
        self._stop = asyncio.Event()


@pytest.fixture
def pod(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Pod:
    monkeypatch.setattr(live_routes, "INIT_WAIT", 0.1)
    monkeypatch.setattr(live_routes, "SUB_INIT_WAIT", 1.0)
    return Pod(tmp_path)


def with_sub(pod: Pod) -> tuple[SubRunner, OnDemand]:
    state = pod.states[CAM]
    sub = CameraState(CAM, state.name)
    sub.live = CameraLive(CAM)
    runner = SubRunner(sub.live)
    demand = OnDemand(f"{CAM} (substream)", runner, idle=0.2)
    state.sub, state.sub_demand = sub, demand
    return runner, demand


@pytest.mark.parametrize("kind", ["http", "websocket"])
async def test_invalid_stream_is_422(pod: Pod, kind: str) -> None:
    path = f"/live/{CAM}/ws" if kind == "websocket" else f"/live/{CAM}"
    for bad in ("third", "Sub", ""):
        sent = await call(pod.app, kind, path, f"{main_query()}&stream={bad}", ended)
        assert start(sent)["status"] == 422
        assert json.loads(body(sent)) == {
            "error": "validation_error",
            "detail": "stream: must be 'main' or 'sub'",
        }


async def test_without_a_substream_stream_sub_is_the_main_stream(pod: Pod) -> None:
    pod.feed(INIT, KEY, DELTA)
    want = INIT + KEY + DELTA
    query = f"{main_query()}&stream=sub"
    sent = await call(pod.app, "http", f"/live/{CAM}", query, lambda s: body(s) == want)
    assert start(sent)["status"] == 200 and body(sent) == want


async def test_stream_sub_starts_the_substream_for_its_viewer_and_releases_it(pod: Pod) -> None:
    runner, demand = with_sub(pod)
    pod.feed(INIT, KEY)
    assert runner.runs == 0  # nobody watches the substream: not started
    main = await call(pod.app, "http", f"/live/{CAM}", main_query(), lambda s: body(s) != b"")
    assert body(main).startswith(INIT) and runner.runs == 0  # main viewers do not start it
    want = SUB_INIT + SUB_KEY
    seen: list[int] = []

    def got_it(sent: list[Message]) -> bool:
        seen.append(demand.viewers)
        return body(sent) == want

    query = f"{main_query()}&stream=sub"
    sent = await call(pod.app, "http", f"/live/{CAM}", query, got_it)
    assert body(sent) == want and runner.runs == 1 and max(seen) == 1
    assert demand.viewers == 0 and demand.running  # released; stops after the idle time
    ws = await call(pod.app, "websocket", f"/live/{CAM}/ws", query, lambda s: len(s) >= 3)
    assert ws[0]["type"] == "websocket.accept" and runner.runs == 1  # the same run
    assert json.loads(ws[1]["text"])["codecs"].startswith("avc3")
    await asyncio.sleep(0.4)
    assert not demand.running and demand.viewers == 0


async def test_a_body_never_started_still_releases_the_substream(pod: Pod) -> None:
    """The client left before the server began the body: its finally never runs."""
    _, demand = with_sub(pod)
    ctx = pod.app.state.pod
    response = await live_routes.live_stream(ctx, CAM, main_query()[len("token=") :], "sub")
    assert demand.viewers == 1 and pod.states[CAM].sub is not None
    sub_live = pod.states[CAM].sub.live
    assert sub_live is not None and sub_live.fanout.subscriber_count == 1
    del response
    gc.collect()
    assert demand.viewers == 0 and sub_live.fanout.subscriber_count == 0
