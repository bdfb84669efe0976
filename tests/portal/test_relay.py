"""PodRelay over real loopback HTTP: a raw asyncio "POD" behind a real uvicorn relay app."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from platebridge.portal.streaming.relay import PodRelay
from platebridge.portal.streaming.relay_errors import UpstreamError
from platebridge.portal.streaming.ssrf import parse_networks
from tests.portal.relay_upstreams import PLAYLIST, LoopThread, RelayServer, Upstream, payload
from tests.support.procs import free_port

SECRET = "POD-SECRET-TOKEN"
TIMEOUT = 0.5  # the relay's connect and read timeouts
BOUND = 10.0  # "did not hang"


@pytest.fixture(scope="module")
def loop_thread() -> Iterator[LoopThread]:
    lt = LoopThread()
    yield lt
    lt.stop()


@pytest.fixture(scope="module")
def upstream(loop_thread: LoopThread) -> Iterator[Upstream]:
    up = Upstream()
    loop_thread.run(up.start())
    yield up
    loop_thread.run(up.stop())


@pytest.fixture(scope="module")
def relay_server(loop_thread: LoopThread) -> Iterator[RelayServer]:
    server = RelayServer(loop_thread, connect_timeout=TIMEOUT, read_timeout=TIMEOUT)
    yield server
    server.stop()


@pytest.fixture
def client(relay_server: RelayServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=relay_server.base, timeout=BOUND, trust_env=False) as c:
        yield c


def pod(upstream: Upstream, path: str, **params: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in {**params, "token": SECRET}.items())
    return f"{upstream.base}{path}?{query}"


def assert_json_error(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error", "detail"}
    assert body["error"] == error
    assert SECRET not in response.text and "127.0.0.1" not in response.text


def wait_for(event_is_set: object, what: str) -> None:
    deadline = time.monotonic() + BOUND
    while time.monotonic() < deadline:
        if event_is_set():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError(f"{what} within {BOUND}s")


# --- the happy paths ----------------------------------------------------------------------------


def test_playlist_passes_through(client: httpx.Client, upstream: Upstream) -> None:
    r = client.get("/playlist", params={"url": pod(upstream, "/stream")})
    assert r.status_code == 200
    assert r.text == PLAYLIST
    assert r.headers["content-type"].startswith("application/vnd.apple.mpegurl")


def test_segment_bytes_and_type_pass_through(client: httpx.Client, upstream: Upstream) -> None:
    size = 1_500_000
    r = client.get("/segment", params={"url": pod(upstream, "/seg", size=str(size))})
    assert r.status_code == 200
    assert r.headers["content-type"] == "video/mp2t"
    assert r.headers["content-length"] == str(size)
    assert r.headers["cache-control"] == "no-store"
    assert hashlib.sha256(r.content).digest() == hashlib.sha256(payload(size)).digest()
    for ctype in ("video/mp4", "video/iso.segment", "audio/aac", "application/octet-stream"):
        r = client.get("/segment", params={"url": pod(upstream, "/seg", size="10", ctype=ctype)})
        assert r.status_code == 200
        assert r.headers["content-type"] == ctype
        assert r.content == payload(10)


def test_segments_reuse_one_upstream_connection(client: httpx.Client, upstream: Upstream) -> None:
    client.get("/segment", params={"url": pod(upstream, "/seg", size="1000")})  # warm the pool
    before = upstream.accepted
    for _ in range(12):
        r = client.get("/segment", params={"url": pod(upstream, "/seg", size="200000")})
        assert r.status_code == 200 and len(r.content) == 200000
    assert upstream.accepted - before <= 1


def test_big_segment_is_streamed_not_buffered(client: httpx.Client, upstream: Upstream) -> None:
    # The POD sends 1 MiB, then waits until the test lets it go on: the viewer must get the
    # first bytes while the POD has sent only a fraction of the 50 MB.
    size = 50 * 1024 * 1024
    tag = "gated-1"
    rec = upstream.record(tag)
    url = pod(upstream, "/gated", tag=tag, size=str(size))
    digest = hashlib.sha256()
    received = 0
    with client.stream("GET", "/segment", params={"url": url}) as r:
        assert r.status_code == 200
        assert r.headers["content-length"] == str(size)
        chunks = r.iter_bytes()
        while received < 512 * 1024:
            chunk = next(chunks)
            digest.update(chunk)
            received += len(chunk)
        assert not rec.finished
        assert rec.sent < 2 * 1024 * 1024 < size
        rec.gate.set()
        for chunk in chunks:
            digest.update(chunk)
            received += len(chunk)
    assert received == size
    assert rec.finished
    assert digest.digest() == hashlib.sha256(payload(size, 3)).digest()


# --- upstream failures --------------------------------------------------------------------------


def test_refused_connection_is_a_fast_502(client: httpx.Client) -> None:
    url = f"http://127.0.0.1:{free_port()}/stream?token={SECRET}"
    for route in ("/playlist", "/segment"):
        started = time.monotonic()
        r = client.get(route, params={"url": url})
        assert time.monotonic() - started < BOUND / 2
        assert_json_error(r, 502, "upstream_unreachable")


@pytest.mark.parametrize("route", ["/playlist", "/segment"])
def test_hanging_pod_is_a_504_within_the_timeout(
    client: httpx.Client, upstream: Upstream, route: str
) -> None:
    tag = f"hang{route}"
    started = time.monotonic()
    r = client.get(route, params={"url": pod(upstream, "/hang", tag=tag)})
    assert time.monotonic() - started < BOUND / 2
    assert_json_error(r, 504, "upstream_timeout")
    wait_for(upstream.record(tag).peer_closed.is_set, "relay closed the hanging connection")


@pytest.mark.parametrize("route", ["/playlist", "/segment"])
def test_trickling_headers_do_not_hold_the_viewer(
    client: httpx.Client, upstream: Upstream, route: str
) -> None:
    # one header byte every 0.1 s never trips the 0.5 s read timeout; the head deadline does
    tag = f"trickle-head{route}"
    started = time.monotonic()
    r = client.get(route, params={"url": pod(upstream, "/trickle-head", tag=tag)})
    assert time.monotonic() - started < BOUND / 2
    assert_json_error(r, 504, "upstream_timeout")
    wait_for(upstream.record(tag).peer_closed.is_set, "relay closed the trickling connection")


def test_trickling_body_is_cut_and_upstream_closed(
    client: httpx.Client, upstream: Upstream
) -> None:
    tag = "trickle-body-1"
    received = 0
    started = time.monotonic()
    with (
        pytest.raises(httpx.RemoteProtocolError),
        client.stream(
            "GET", "/segment", params={"url": pod(upstream, "/trickle-body", tag=tag)}
        ) as r,
    ):
        assert r.status_code == 200
        assert r.headers["content-length"] == "1000000"
        for chunk in r.iter_bytes():
            received += len(chunk)
    assert time.monotonic() - started < BOUND
    assert 0 < received < 1_000_000  # truncated, visibly: never a complete-looking segment
    wait_for(upstream.record(tag).peer_closed.is_set, "relay closed the trickling upstream")


def test_redirect_is_not_followed(client: httpx.Client, upstream: Upstream) -> None:
    before = upstream.hits.get("/target", 0)
    for route in ("/playlist", "/segment"):
        r = client.get(route, params={"url": pod(upstream, "/redirect")})
        assert_json_error(r, 502, "upstream_redirect")
        assert "location" not in r.headers
    assert upstream.hits.get("/target", 0) == before


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [
        (404, 404, "not_found"),
        (503, 503, "stream_not_ready"),
        (401, 502, "upstream_refused_token"),
        (403, 502, "upstream_refused_token"),
        (500, 502, "upstream_error"),
        (400, 502, "upstream_error"),
        (204, 502, "upstream_error"),
    ],
)
def test_pod_status_mapping(
    client: httpx.Client, upstream: Upstream, code: int, status: int, error: str
) -> None:
    for route in ("/playlist", "/segment"):
        r = client.get(route, params={"url": pod(upstream, "/status", code=str(code))})
        assert_json_error(r, status, error)


def test_not_ready_carries_retry_after(client: httpx.Client, upstream: Upstream) -> None:
    r = client.get(
        "/segment", params={"url": pod(upstream, "/status", code="503", retry_after="7")}
    )
    assert_json_error(r, 503, "stream_not_ready")
    assert r.headers["retry-after"] == "7"


@pytest.mark.parametrize(
    ("path", "params", "error"),
    [
        ("/garbage", {}, "upstream_bad_playlist"),
        ("/binary", {}, "upstream_bad_playlist"),
        ("/html", {}, "upstream_bad_playlist"),
        ("/seg", {"size": "100"}, "upstream_bad_playlist"),  # a segment is not a playlist
        ("/big-playlist", {}, "upstream_playlist_too_large"),
        ("/big-playlist", {"chunked": "1"}, "upstream_playlist_too_large"),
        ("/not-http", {}, "upstream_bad_response"),
    ],
)
def test_garbage_playlists_are_502(
    client: httpx.Client, upstream: Upstream, path: str, params: dict[str, str], error: str
) -> None:
    r = client.get("/playlist", params={"url": pod(upstream, path, **params)})
    assert_json_error(r, 502, error)


@pytest.mark.parametrize(
    ("path", "params", "error"),
    [
        ("/html", {}, "upstream_bad_segment"),
        ("/stream", {}, "upstream_bad_segment"),
        ("/seg", {"ctype": "text/javascript"}, "upstream_bad_segment"),
        ("/not-http", {}, "upstream_bad_response"),
    ],
)
def test_garbage_segments_are_502(
    client: httpx.Client, upstream: Upstream, path: str, params: dict[str, str], error: str
) -> None:
    r = client.get("/segment", params={"url": pod(upstream, path, **params)})
    assert_json_error(r, 502, error)


# --- the viewer goes away -----------------------------------------------------------------------


def test_client_disconnect_closes_the_upstream(
    relay_server: RelayServer, upstream: Upstream
) -> None:
    tag = "disconnect-1"
    size = 20 * 1024 * 1024  # 64 KiB every 50 ms: 16 s if nobody stopped it
    rec = upstream.record(tag)
    url = pod(upstream, "/slow", tag=tag, size=str(size))
    with (
        httpx.Client(base_url=relay_server.base, timeout=BOUND, trust_env=False) as viewer,
        viewer.stream("GET", "/segment", params={"url": url}) as r,
    ):
        assert r.status_code == 200
        received = 0
        for chunk in r.iter_bytes():
            received += len(chunk)
            if received >= 300 * 1024:
                break
    # leaving the blocks closed the viewer's connection
    wait_for(rec.peer_closed.is_set, "the POD saw its connection closed")
    assert not rec.finished
    assert rec.sent < size


# --- secrets and client settings ----------------------------------------------------------------


def test_token_never_in_logs(
    client: httpx.Client, upstream: Upstream, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # other suites may have raised these loggers' levels; this test needs their records
    caplog.set_level(logging.DEBUG, logger="httpx")
    caplog.set_level(logging.DEBUG, logger="httpcore")
    for route, path in [
        ("/playlist", "/garbage"),
        ("/segment", "/status"),
        ("/playlist", "/redirect"),
    ]:
        client.get(route, params={"url": pod(upstream, path, code="500")})
    client.get("/segment", params={"url": f"http://127.0.0.1:{free_port()}/x?token={SECRET}"})
    relay_records = [rec for rec in caplog.records if rec.name.startswith("platebridge")]
    assert len(relay_records) >= 4
    # everything logged on the portal side (the test's own client logs its URLs with the POD
    # URL as a query parameter, which a real browser never has)
    portal_side = [rec for rec in caplog.records if rec.thread != threading.get_ident()]
    # plain-HTTP PODs go through the lean client (no httpx request log); the relay's own
    # records carry the (redacted) URL
    assert any(rec.name == "platebridge.portal.streaming.relay" for rec in portal_side)
    for rec in portal_side:
        assert SECRET not in rec.getMessage()


async def test_environment_proxies_are_ignored(
    upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, dead)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    async with PodRelay.create(TIMEOUT, TIMEOUT) as relay:
        assert await relay.fetch_playlist(pod(upstream, "/stream")) == PLAYLIST


async def test_upstream_error_never_contains_the_url(upstream: Upstream) -> None:
    async with PodRelay.create(TIMEOUT, TIMEOUT) as relay:
        for url in (
            pod(upstream, "/status", code="500"),
            pod(upstream, "/hang", tag="direct-hang"),
            f"http://127.0.0.1:{free_port()}/stream?token={SECRET}",
            f"ftp://127.0.0.1/stream?token={SECRET}",
            f"http://[::1/stream?token={SECRET}",
        ):
            with pytest.raises(UpstreamError) as info:
                await relay.fetch_playlist(url)
            text = str(info.value) + info.value.detail
            assert SECRET not in text and "127.0.0.1" not in text
            assert info.value.__cause__ is None
            assert info.value.status_code in (502, 504)


async def test_allowed_networks_recheck_the_host(upstream: Upstream) -> None:
    async with PodRelay.create(
        TIMEOUT, TIMEOUT, allowed_networks=parse_networks("10.0.0.0/8")
    ) as relay:
        before = upstream.accepted
        with pytest.raises(UpstreamError) as info:
            await relay.fetch_playlist(pod(upstream, "/stream"))
        assert info.value.error == "pod_address_refused"
        with pytest.raises(UpstreamError):
            await relay.stream_segment(f"http://localhost:{upstream.port}/seg?token={SECRET}")
        assert upstream.accepted == before  # refused without a connection attempt
    async with PodRelay.create(
        TIMEOUT, TIMEOUT, allowed_networks=parse_networks("127.0.0.0/8")
    ) as relay:
        assert await relay.fetch_playlist(pod(upstream, "/stream")) == PLAYLIST


def test_create_validates_arguments() -> None:
    with pytest.raises(ValueError, match="timeouts"):
        PodRelay.create(0, 1)
    with pytest.raises(ValueError, match="max_connections"):
        PodRelay.create(1, 1, max_connections=0)
