"""``WS /api/pod/live/{pod_id}``: authorisation before the upgrade, the viewer protocol, one
shared upstream per camera, upstream failures told to the viewers (docs/live.md, Portal).

Fast lane: the real portal app served by uvicorn in a thread of this process (SQLite and
PostgreSQL), a loopback HTTP "POD" that serves an endless fMP4 body built byte by byte, and the
``websockets`` client. The real POD agent and camera: ``test_live_e2e.py``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest
import uvicorn
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from platebridge.core.fmp4 import split
from platebridge.portal.app import create_app
from platebridge.portal.streaming import live as live_module
from tests.core.test_fmp4 import NON_SYNC, SYNC, VIDEO, box, fragment, full, init_segment, traf
from tests.portal.relay_upstreams import LoopThread
from tests.portal.streaming_support import LOOPBACK_NETWORKS, heartbeat, stream_token
from tests.support.inprocess import settings_from_env
from tests.support.portal import SeededCompany, age_pods, login, seed_company
from tests.support.procs import free_port

CAMERA = "gate-camera-1"
INIT = init_segment(VIDEO)
KEY = fragment(traf(1, first=SYNC))
DELTA = fragment(traf(1, first=NON_SYNC))
#: one keyframe, then 4 delta fragments: a 5-fragment "GOP"
GOP = [KEY, DELTA, DELTA, DELTA, DELTA]


def wait_until(what: str, check: Callable[[], bool], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for: {what}"
        time.sleep(0.02)


@dataclass
class LivePod:
    """``GET /live/{camera}`` on loopback: 200 video/mp4, chunked, the init segment then
    fragments every 20 ms until told otherwise. Counts requests and open bodies."""

    lt: LoopThread
    port: int = 0
    requests: list[str] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    open_bodies: int = 0
    status: int = 200
    refusal: tuple[str, str] = ("unknown_camera", "no such camera")  # the error body's fields
    gop: list[bytes] = field(default_factory=lambda: GOP)  # the fragments sent, in a loop
    cut: threading.Event = field(default_factory=threading.Event)  # set: break the bodies
    end: threading.Event = field(default_factory=threading.Event)  # set: end them (a restart)
    _server: asyncio.Server | None = None

    def start(self) -> LivePod:
        async def go() -> None:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
            self.port = self._server.sockets[0].getsockname()[1]

        self.lt.run(go())
        return self

    def close(self) -> None:
        async def stop() -> None:
            if self._server is not None:
                self._server.close()

        self.lt.run(stop())

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            target = urlsplit(head.split(b"\r\n", 1)[0].split(b" ")[1].decode())
            self.requests.append(target.path)
            self.tokens.append(target.query)
            if self.status != 200:
                body = json.dumps({"error": self.refusal[0], "detail": self.refusal[1]})
                writer.write(
                    f"HTTP/1.1 {self.status} X\r\ncontent-type: application/json\r\n"
                    f"content-length: {len(body)}\r\n\r\n{body}".encode()
                )
                await writer.drain()
                return
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: video/mp4\r\ntransfer-encoding: chunked\r\n"
                b"cache-control: no-store\r\n\r\n"
            )
            self.open_bodies += 1
            try:
                await self._body(writer)
            finally:
                self.open_bodies -= 1
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _body(self, writer: asyncio.StreamWriter) -> None:
        def chunk(data: bytes) -> bytes:
            return f"{len(data):x}\r\n".encode() + data + b"\r\n"

        writer.write(chunk(INIT))
        sent = 0
        while not self.cut.is_set():
            if self.end.is_set():
                self.end.clear()
                writer.write(b"0\r\n\r\n")  # a clean end: the camera restarts
                await writer.drain()
                return
            writer.write(chunk(self.gop[sent % len(self.gop)]))
            await writer.drain()
            sent += 1
            await asyncio.sleep(0.02)
        writer.write(b"5\r\nabc")  # cut mid-chunk: a broken body, not a clean end


@dataclass
class LivePortal:
    url: str
    app: Any
    lt: LoopThread

    @property
    def live(self) -> Any:
        return self.app.state.streaming.live

    def ws_url(self, pod_id: str, camera_id: str | None = CAMERA, token: str | None = None) -> str:
        query = []
        if camera_id is not None:
            query.append(f"camera_id={quote(camera_id)}")
        if token is not None:
            query.append(f"token={quote(token, safe='')}")
        return f"ws://{self.url.removeprefix('http://')}/api/pod/live/{pod_id}?" + "&".join(query)


@pytest.fixture(scope="module")
def lt() -> Iterator[LoopThread]:
    loop = LoopThread()
    yield loop
    loop.stop()


@pytest.fixture(scope="module")
def live_portal(db_url: str, lt: LoopThread) -> Iterator[LivePortal]:
    app = create_app(settings_from_env(db_url, {"PLATEBRIDGE_POD_NETWORKS": LOOPBACK_NETWORKS}))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    done = asyncio.run_coroutine_threadsafe(server.serve(), lt.loop)
    wait_until("the portal serves", lambda: server.started or done.done())
    assert not done.done()
    app.state.streaming.live.linger = 0.3  # the upstream closes soon after the last viewer
    try:
        yield LivePortal(f"http://127.0.0.1:{port}", app, lt)
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            done.result(15)


@dataclass
class World:
    portal: LivePortal
    pod: LivePod
    tenant: SeededCompany
    auth: dict[str, str]


@pytest.fixture
def world(live_portal: LivePortal, lt: LoopThread, db_url: str) -> Iterator[World]:
    pod = LivePod(lt).start()
    tenant = seed_company(db_url)
    heartbeat(live_portal.url, tenant, "127.0.0.1", pod.port, (CAMERA,))
    try:
        yield World(live_portal, pod, tenant, login(live_portal.url, tenant.email, tenant.password))
    finally:
        pod.close()


def open_ws(url: str, auth: dict[str, str] | None = None) -> ClientConnection:
    return connect(url, additional_headers=auth or {}, open_timeout=20, max_size=None)


def refusal(url: str, auth: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    with pytest.raises(InvalidStatus) as caught:
        open_ws(url, auth).close()
    response = caught.value.response
    assert response.headers["content-type"].startswith("application/json")
    return response.status_code, json.loads(response.body or b"{}")


def recv(ws: ClientConnection) -> bytes | str:
    return ws.recv(timeout=20)


def read_until_closed(ws: ClientConnection, seconds: float = 60) -> tuple[list[bytes | str], int]:
    """Every message until the server closes, and its close code (fails after ``seconds``)."""
    messages: list[bytes | str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            messages.append(recv(ws))
        except ConnectionClosed as closed:
            assert closed.rcvd is not None, "closed without a close frame"
            return messages, closed.rcvd.code
    raise AssertionError(f"the server did not close within {seconds} s")


def start_of_stream(ws: ClientConnection) -> tuple[dict[str, Any], bytes, bytes]:
    """The init text, the init segment and the first fragment."""
    text = recv(ws)
    assert isinstance(text, str)
    init, first = recv(ws), recv(ws)
    assert isinstance(init, bytes) and isinstance(first, bytes)
    return json.loads(text), init, first


def test_viewer_gets_init_text_init_segment_and_a_keyframe_first(world: World) -> None:
    url = world.portal.ws_url(world.tenant.pod_id)
    with open_ws(url, world.auth) as ws:
        hello, init, first = start_of_stream(ws)
        assert hello == {
            "type": "init",
            "codecs": "avc1.640028",
            "mime": 'video/mp4; codecs="avc1.640028"',
            "camera_id": CAMERA,
        }
        assert init == INIT
        assert split(INIT + first).fragments[0].keyframe
        for _ in range(6):  # then live fragments, one per message
            message = recv(ws)
            assert isinstance(message, bytes) and message in (KEY, DELTA)
    assert world.pod.requests == [f"/live/{CAMERA}"]
    # The portal's own POD token, never the viewer's credentials.
    assert world.pod.tokens[0].startswith("token=")
    assert world.auth["Authorization"].split()[1] not in world.pod.tokens[0]


def test_three_viewers_share_one_upstream_closed_after_the_last_leaves(world: World) -> None:
    url = world.portal.ws_url(world.tenant.pod_id)
    token = stream_token(world.portal.url, world.auth, world.tenant.pod_id, CAMERA).json()["token"]
    with contextlib.ExitStack() as stack:
        viewers = [
            stack.enter_context(open_ws(url, world.auth)),
            stack.enter_context(open_ws(url, world.auth)),
            stack.enter_context(open_ws(world.portal.ws_url(world.tenant.pod_id, token=token))),
        ]
        for ws in viewers:
            hello, init, first = start_of_stream(ws)
            assert hello["codecs"] == "avc1.640028" and init == INIT
            assert split(INIT + first).fragments[0].keyframe  # the keyframe cache
        assert len(world.pod.requests) == 1  # ONE upstream for three viewers
        assert world.pod.open_bodies == 1
        ups = [u for u in world.portal.live.upstreams.values() if u.viewers]
        assert [u.viewers for u in ups] == [3]
    wait_until("the upstream is closed", lambda: world.pod.open_bodies == 0)
    assert len(world.pod.requests) == 1


def test_upstream_failure_is_an_error_message_then_a_new_upstream(world: World) -> None:
    url = world.portal.ws_url(world.tenant.pod_id)
    with open_ws(url, world.auth) as ws, open_ws(url, world.auth) as ws2:
        for viewer in (ws, ws2):
            start_of_stream(viewer)
        world.pod.cut.set()
        for viewer in (ws, ws2):
            messages, code = read_until_closed(viewer)
            assert code == 1011
            last = messages[-1]
            assert isinstance(last, str)
            error = json.loads(last)
            assert error["type"] == "error" and error["error"].startswith("upstream_")
            assert error["detail"]
    assert len(world.pod.requests) == 1
    world.pod.cut.clear()
    with open_ws(url, world.auth) as ws:  # the viewer reconnects: a new upstream
        assert start_of_stream(ws)[1] == INIT
    assert len(world.pod.requests) == 2


def test_pod_error_status_after_the_upgrade_is_mapped(world: World) -> None:
    world.pod.status = 404
    with open_ws(world.portal.ws_url(world.tenant.pod_id), world.auth) as ws:
        error = json.loads(str(recv(ws)))
        assert error == {
            "type": "error",
            "error": "not_found",
            "detail": "the POD does not know this camera or segment",
        }
        with pytest.raises(ConnectionClosed):
            recv(ws)


def test_a_camera_restart_is_bridged_with_a_restarted_notice(world: World) -> None:
    """The POD ends its body when the camera restarts: the portal opens it again and the
    viewers get ``restarted``, the new init segment and a keyframe, on the same socket."""
    with open_ws(world.portal.ws_url(world.tenant.pod_id), world.auth) as ws:
        start_of_stream(ws)
        world.pod.end.set()
        message = recv(ws)
        while not isinstance(message, str):
            message = recv(ws)
        assert json.loads(message) == {
            "type": "notice",
            "reason": "restarted",
            "codecs": "avc1.640028",
            "mime": 'video/mp4; codecs="avc1.640028"',
        }
        init, first = recv(ws), recv(ws)
        assert init == INIT and isinstance(first, bytes)
        assert split(INIT + first).fragments[0].keyframe
    assert len(world.pod.requests) == 2


def test_the_pods_reason_for_a_camera_without_video_reaches_the_viewer(world: World) -> None:
    world.pod.status = 503
    world.pod.refusal = ("camera_error", "camera answered 401 Unauthorized (check the password)")
    with open_ws(world.portal.ws_url(world.tenant.pod_id), world.auth) as ws:
        assert json.loads(str(recv(ws))) == {
            "type": "error",
            "error": "camera_error",
            "detail": "camera answered 401 Unauthorized (check the password)",
        }
        with pytest.raises(ConnectionClosed) as closed:
            recv(ws)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011


def big_fragment(first: int, size: int = 64 * 1024) -> bytes:
    moof = box("moof", full("mfhd", 0, 0, b"\0\0\0\1"), traf(1, first=first))
    return moof + box("mdat", bytes(size))


def stalled_viewer(url: str, auth: dict[str, str]) -> socket.socket:
    """A WebSocket client that completes the upgrade and then never reads (a tiny receive
    buffer, so the portal's sends back up at once)."""
    parts = urlsplit(url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: the window
    sock.connect(("127.0.0.1", int(parts.port or 0)))
    key = base64.b64encode(os.urandom(16)).decode()
    headers = {
        "Host": parts.netloc,
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": key,
        "Sec-WebSocket-Version": "13",
        **auth,
    }
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    sock.sendall(f"GET {parts.path}?{parts.query} HTTP/1.1\r\n{head}\r\n".encode())
    assert sock.recv(12) == b"HTTP/1.1 101", "the upgrade was refused"
    return sock


def test_a_viewer_that_stops_reading_is_dropped_the_others_play_on(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing buffers without bound: a stalled viewer over its budget skips, then is closed
    as too slow (or its send times out); a viewer that reads is not held up."""
    monkeypatch.setattr(world.portal.live, "budget", 128 * 1024)
    monkeypatch.setattr(live_module, "SEND_TIMEOUT", 1.0)
    world.pod.gop = [big_fragment(SYNC), *[big_fragment(NON_SYNC)] * 4]
    url = world.portal.ws_url(world.tenant.pod_id)
    with open_ws(url, world.auth) as reader:
        start_of_stream(reader)
        (upstream,) = [
            u for u in world.portal.live.upstreams.values() if u.key[1] == CAMERA and u.viewers
        ]
        stalled = stalled_viewer(url, world.auth)  # upgraded, then never reads again
        try:
            wait_until("two viewers", lambda: upstream.fanout.subscriber_count == 2)
            deadline = time.monotonic() + 60
            while upstream.fanout.subscriber_count > 1:  # the reader keeps reading meanwhile
                assert time.monotonic() < deadline, "the stalled viewer was never dropped"
                assert isinstance(recv(reader), bytes)
            for _ in range(10):  # and plays on
                assert isinstance(recv(reader), bytes)
        finally:
            stalled.close()


def test_refusals_are_json_before_the_upgrade(world: World, db_url: str) -> None:
    portal, pod_id = world.portal, world.tenant.pod_id
    status, body = refusal(portal.ws_url(pod_id))
    assert (status, body["error"]) == (401, "unauthorized")
    status, body = refusal(portal.ws_url(pod_id, token="not-a-token"))
    assert (status, body["error"]) == (401, "invalid_stream_token")
    status, body = refusal(portal.ws_url(pod_id, camera_id=None), world.auth)
    assert (status, body["error"]) == (422, "validation_error")
    status, body = refusal(portal.ws_url("p" * 65), world.auth)
    assert (status, body["detail"][0]["field"]) == (422, "pod_id")
    status, body = refusal(portal.ws_url(pod_id, camera_id="c" * 65), world.auth)
    assert (status, body["detail"][0]["field"]) == (422, "camera_id")
    # Another company's camera looks exactly like one that does not exist.
    other = seed_company(db_url, pod_id="other-gate-pod")
    heartbeat(portal.url, other, "127.0.0.1", world.pod.port, (CAMERA,))
    foreign = refusal(portal.ws_url("other-gate-pod"), world.auth)
    ghost = refusal(portal.ws_url("nx-gate-pod"), world.auth)
    assert foreign[0] == 404 and foreign[1]["error"] == "not_found"
    assert foreign[1]["detail"].replace("other-gate-pod", "<ID>") == ghost[1]["detail"].replace(
        "nx-gate-pod", "<ID>"
    )
    # Company A's stream token for its own camera does not open B's.
    token = stream_token(portal.url, world.auth, pod_id, CAMERA).json()["token"]
    status, body = refusal(portal.ws_url("other-gate-pod", token=token))
    assert (status, body["error"]) == (401, "invalid_stream_token")
    assert world.pod.requests == []  # nothing reached the POD


def test_offline_pod_is_409_before_the_upgrade(world: World, db_url: str) -> None:
    age_pods(db_url, world.tenant.company_id, 3600)
    status, body = refusal(world.portal.ws_url(world.tenant.pod_id), world.auth)
    assert (status, body["error"]) == (409, "pod_offline")


def test_an_open_viewing_ends_when_the_pod_goes_offline(
    world: World, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Authorised again while open (as each HLS request is): the pod offline ends it."""
    monkeypatch.setattr(live_module, "RECHECK_SECONDS", 0.1)
    with open_ws(world.portal.ws_url(world.tenant.pod_id), world.auth) as ws:
        start_of_stream(ws)
        age_pods(db_url, world.tenant.company_id, 3600)
        messages, code = read_until_closed(ws)
        assert code == 1008
        assert isinstance(messages[-1], str)
        assert json.loads(messages[-1])["error"] == "pod_offline"


def test_viewing_is_audited_with_its_method(world: World) -> None:
    with open_ws(world.portal.ws_url(world.tenant.pod_id), world.auth) as ws:
        start_of_stream(ws)
    r = httpx.get(
        f"{world.portal.url}/api/audit", headers=world.auth, params={"action": "stream_started"}
    )
    assert r.status_code == 200, r.text
    events = [e for e in r.json()["events"] if e["camera_id"] == CAMERA]
    assert [e["method"] for e in events] == ["proxy"]


def test_live_urls_from_the_token_and_the_listing_open_the_stream(world: World) -> None:
    portal, pod_id = world.portal, world.tenant.pod_id
    data = stream_token(portal.url, world.auth, pod_id, CAMERA).json()
    assert data["live_url"].startswith(f"/api/pod/live/{pod_id}?camera_id={CAMERA}&token=")
    ws_base = portal.url.replace("http://", "ws://")
    with open_ws(ws_base + data["live_url"]) as ws:  # the token alone authorises it
        assert start_of_stream(ws)[1] == INIT
    cams = httpx.get(f"{portal.url}/api/cameras", headers=world.auth).json()["cameras"]
    (cam,) = [c for c in cams if c["pod_id"] == pod_id]
    assert cam["live_url"] == f"/api/pod/live/{pod_id}?camera_id={CAMERA}"  # session-authorised
    with open_ws(ws_base + cam["live_url"], world.auth) as ws:
        assert start_of_stream(ws)[1] == INIT
    assert refusal(ws_base + cam["live_url"])[0] == 401


def test_the_session_cookie_counts_only_from_this_site(world: World) -> None:
    url = world.portal.ws_url(world.tenant.pod_id)
    cookie = {"Cookie": f"pb_session={world.auth['Authorization'].split()[1]}"}
    own = world.portal.url
    with open_ws(url, {**cookie, "Origin": own}) as ws:
        assert start_of_stream(ws)[1] == INIT
    # A page elsewhere cannot ride on the viewer's cookie (no CORS for WebSockets).
    status, body = refusal(url, {**cookie, "Origin": "https://evil.example"})
    assert (status, body["error"]) == (401, "unauthorized")
