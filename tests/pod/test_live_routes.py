"""/live and /live/{camera}/ws in-process: refusals like /stream, the body, the viewer protocol.

Driven at the ASGI level (an endless body and a WebSocket need a client that can stop
reading), with a real CameraLive fed real fMP4 bytes (built as in tests/core/test_fmp4).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from platebridge.core.fmp4 import Fragment, Splitter
from platebridge.core.tunnel import allowed_path
from platebridge.pod import live_routes
from platebridge.pod.http import create_app
from platebridge.pod.live import CameraLive
from platebridge.pod.supervisor import CameraState
from tests.core.test_fmp4 import NON_SYNC, SYNC, VIDEO, fragment, init_segment, traf, trex
from tests.pod.test_http_routes import make_config
from tests.support.builders import stream_token

CAM = "gate-camera-1"
INIT = init_segment(VIDEO, trexes=(trex(1, NON_SYNC),))
KEY, DELTA = fragment(traf(1, first=SYNC)), fragment(traf(1))
Message = dict[str, Any]


class Pod:
    def __init__(self, tmp: Path) -> None:
        config = make_config(tmp)
        self.states = {c.camera_id: CameraState(c.camera_id, c.name) for c in config.cameras}
        self.live = CameraLive(CAM)
        self.states[CAM].live = self.live
        self.app = create_app(config, self.states)

    def feed(self, *chunks: bytes) -> None:
        splitter = Splitter()
        for chunk in chunks:
            assert self.live.feed(splitter, chunk)


@pytest.fixture
def pod(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Pod:
    monkeypatch.setattr(live_routes, "INIT_WAIT", 0.1)
    return Pod(tmp_path)


async def call(
    app: Any, kind: str, path: str, query: str, until: Callable[[list[Message]], bool]
) -> list[Message]:
    """Run one ASGI connection until ``until(sent)``; then the client goes away."""
    sent: list[Message] = []
    changed, gone = asyncio.Event(), asyncio.Event()
    first = [{"type": "websocket.connect"} if kind == "websocket" else {"type": "http.request"}]

    async def receive() -> Message:
        if first:
            return first.pop()
        await gone.wait()
        return (
            {"type": "websocket.disconnect", "code": 1001}
            if kind == "websocket"
            else {"type": "http.disconnect"}
        )

    async def send(message: Message) -> None:
        sent.append(message)
        changed.set()

    scope = {
        "type": kind,
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "ws" if kind == "websocket" else "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "headers": [(b"host", b"pod")],
        "client": ("127.0.0.1", 1),
        "server": ("pod", 80),
        "extensions": {"websocket.http.response": {}},
        "subprotocols": [],
    }
    task = asyncio.create_task(app(scope, receive, send))
    async with asyncio.timeout(5):
        while not until(sent) and not task.done():
            changed.clear()
            await changed.wait()
    gone.set()
    await asyncio.wait_for(task, 5)
    return sent


def body(sent: list[Message]) -> bytes:
    kinds = ("http.response.body", "websocket.http.response.body")
    return b"".join(m.get("body", b"") for m in sent if m["type"] in kinds)


def start(sent: list[Message]) -> Message:
    return next(m for m in sent if m["type"].endswith("response.start"))


def ended(sent: list[Message]) -> bool:
    return any(m["type"].endswith("response.body") and not m.get("more_body") for m in sent) or any(
        m["type"] == "websocket.close" for m in sent
    )


def token_query(camera: str = CAM, **kw: Any) -> str:
    return f"token={stream_token(camera, **kw)}"


@pytest.mark.parametrize(
    ("path", "query", "status", "error"),
    [
        (f"/live/{CAM}", "", 401, "token_missing"),
        (f"/live/{CAM}", token_query(exp_in=-1), 401, "token_expired"),
        (f"/live/{CAM}", token_query(pod_id="other"), 403, "wrong_pod"),
        (f"/live/{CAM}", token_query("side"), 403, "wrong_camera"),
        ("/live/nope", token_query("nope"), 404, "unknown_camera"),
        ("/live/side", token_query("side"), 409, "camera_inactive"),  # live output off
        (f"/live/{CAM}", token_query(), 409, "camera_inactive"),  # no init within the wait
    ],
)
@pytest.mark.parametrize("kind", ["http", "websocket"])
async def test_refusals_like_stream(
    pod: Pod, kind: str, path: str, query: str, status: int, error: str
) -> None:
    ws_path = f"{path}/ws" if kind == "websocket" else path
    sent = await call(pod.app, kind, ws_path, query, ended)
    assert start(sent)["status"] == status
    assert json.loads(body(sent))["error"] == error
    assert not any(m["type"] == "websocket.accept" for m in sent)  # refused before the upgrade


async def test_camera_error_and_unplayable_codec(pod: Pod) -> None:
    pod.states[CAM].status, pod.states[CAM].error = "error", "ffmpeg exited with code 1: 401"
    sent = await call(pod.app, "http", f"/live/{CAM}", token_query(), ended)
    assert start(sent)["status"] == 503
    assert json.loads(body(sent)) == {"error": "camera_error", "detail": pod.states[CAM].error}
    pod.states[CAM].status = "active"
    vp9 = init_segment(VIDEO.replace(b"avc1", b"vp09"))
    assert not pod.live.feed(Splitter(), vp9)
    sent = await call(pod.app, "websocket", f"/live/{CAM}/ws", token_query(), ended)
    assert start(sent)["status"] == 503
    assert "'vp09'" in json.loads(body(sent))["detail"]


async def test_body_is_init_then_keyframe_cache_then_live(pod: Pod) -> None:
    pod.feed(INIT, DELTA, KEY, DELTA)  # a late joiner: everything since the keyframe at once
    expected = INIT + KEY + DELTA
    sent = await call(pod.app, "http", f"/live/{CAM}", token_query(), lambda s: body(s) == expected)
    head = start(sent)
    headers = {k.decode(): v.decode() for k, v in head["headers"]}
    assert head["status"] == 200 and headers["content-type"] == "video/mp4"
    assert headers["x-live-codecs"] == "avc1.640028" and headers["cache-control"] == "no-store"
    assert body(sent) == expected
    assert pod.live.fanout.subscriber_count == 0  # the viewer left: unsubscribed


async def test_body_ends_when_the_run_ends(pod: Pod) -> None:
    pod.feed(INIT, KEY)

    async def end_soon() -> None:
        while pod.live.fanout.subscriber_count == 0:
            await asyncio.sleep(0.01)
        pod.live.end_run("camera_error")

    stopper = asyncio.create_task(end_soon())
    sent = await call(pod.app, "http", f"/live/{CAM}", token_query(), ended)
    await stopper
    assert body(sent) == INIT + KEY and ended(sent)


async def test_websocket_viewer_protocol(pod: Pod) -> None:
    pod.feed(INIT, KEY)

    def frames(sent: list[Message]) -> list[Message]:
        return [m for m in sent if m["type"] == "websocket.send"]

    async def restart_then_end() -> None:
        while pod.live.fanout.subscriber_count == 0:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        pod.live.fanout.set_init(INIT, "avc1.640028")  # the source restarted in-stream
        pod.live.fanout.push(Fragment(KEY, True))
        await asyncio.sleep(0.05)  # delivered before the end (close drops what is unread)
        pod.live.end_run("camera_error")

    task = asyncio.create_task(restart_then_end())
    sent = await call(pod.app, "websocket", f"/live/{CAM}/ws", token_query(), ended)
    await task
    assert sent[0]["type"] == "websocket.accept"
    msgs = [m.get("text") or m.get("bytes") for m in frames(sent)]
    hello = json.loads(msgs[0])
    assert hello == {
        "type": "init",
        "codecs": "avc1.640028",
        "mime": 'video/mp4; codecs="avc1.640028"',
        "camera_id": CAM,
    }
    assert msgs[1:3] == [INIT, KEY]
    assert json.loads(msgs[3]) == {
        "type": "notice",
        "reason": "restarted",
        "codecs": "avc1.640028",
        "mime": 'video/mp4; codecs="avc1.640028"',
    }
    assert msgs[4:6] == [INIT, KEY]
    assert json.loads(msgs[6])["type"] == "error" and json.loads(msgs[6])["error"] == "camera_error"
    assert sent[-1] == {"type": "websocket.close", "code": 1011, "reason": ""}


def test_tunnel_admits_the_live_body_not_its_websocket() -> None:
    assert allowed_path(f"/live/{CAM}")
    for path in (f"/live/{CAM}/ws", "/live/", "/live/../stream", f"/live/{CAM}/x"):
        assert not allowed_path(path)
