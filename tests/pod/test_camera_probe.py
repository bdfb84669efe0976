"""The back-off's camera probe (pod/camera_probe.py) against real loopback sockets: a fake
camera that answers RTSP with a chosen status, a closed port, a camera that accepts and says
nothing; and the wait that ends early only when an absent camera answers again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from platebridge.pod.camera_probe import (
    ReturnWatch,
    Target,
    absent_reason,
    describe_request,
    probe,
    target,
    verdict,
)
from platebridge.pod.ffmpeg import MediaInfo
from tests.support.procs import free_port

MEDIA = MediaInfo(video_codec="h264")


class FakeCamera:
    """An RTSP port on loopback: answers every request with ``status`` (None: accepts, reads,
    never answers); remembers what it was sent; can be closed and opened on the same port."""

    def __init__(self, port: int, status: int | None = 200) -> None:
        self.port, self.status = port, status
        self.requests: list[bytes] = []
        self._server: asyncio.Server | None = None

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            self.requests.append(await reader.readuntil(b"\r\n\r\n"))
            if self.status is None:
                await asyncio.sleep(5)
            else:
                writer.write(f"RTSP/1.0 {self.status} Whatever\r\nCSeq: 1\r\n\r\n".encode())
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def camera() -> AsyncIterator[FakeCamera]:
    cam = FakeCamera(free_port())
    await cam.open()
    try:
        yield cam
    finally:
        await cam.close()


def url(port: int) -> str:
    return f"rtsp://admin:s3cret@127.0.0.1:{port}/stream?channel=1"


def test_target_is_the_configured_host_and_port_without_credentials() -> None:
    t = target(url(8554))
    assert t == Target("127.0.0.1", 8554, "rtsp://127.0.0.1:8554/stream?channel=1")
    assert target("rtsp://cam.local/live").port == 554
    v6 = target("rtsp://u:p@[fd00::5]:10554/x")
    assert (v6.host, v6.port, v6.request_url) == ("fd00::5", 10554, "rtsp://[fd00::5]:10554/x")
    request = describe_request(t).decode()
    assert request.startswith("DESCRIBE rtsp://127.0.0.1:8554/stream?channel=1 RTSP/1.0\r\n")
    assert "s3cret" not in request and "admin" not in request and "Authorization" not in request
    with pytest.raises(ValueError):
        target("rtsp:///no-host")


def test_verdict_and_failure_reasons() -> None:
    assert verdict(b"") == "absent"
    assert verdict(b"RTSP/1.0 404 Not Found\r\n") == "absent"
    assert verdict(b"RTSP/1.0 503 Service Unavailable\r\n") == "absent"
    assert verdict(b"RTSP/1.0 200 OK\r\n") == "there"
    assert verdict(b"RTSP/1.0 401 Unauthorized\r\n") == "there"
    assert verdict(b"HTTP/1.1 400 Bad Request\r\n") == "there"  # something answers
    said = "ffmpeg exited with code 1: rtsp://127.0.0.1:1/stream: "
    assert absent_reason(said + "Server returned 404 Not Found")
    assert absent_reason(said + "Connection refused")
    assert absent_reason(said + "Connection timed out")
    assert not absent_reason(said + "Server returned 401 Unauthorized (authorization failed)")
    assert not absent_reason("stalled: no video frame for 4 s")
    assert not absent_reason("ffmpeg exited with code 0: Non-monotonous DTS in output stream")


async def test_probe_reads_the_status_and_sends_no_credentials(camera: FakeCamera) -> None:
    t = target(url(camera.port))
    assert await probe(t) == "there"
    camera.status = 404
    assert await probe(t) == "absent"
    camera.status = 401
    assert await probe(t) == "there"
    assert len(camera.requests) == 3
    assert all(b"s3cret" not in r and b"admin" not in r for r in camera.requests)


async def test_probe_is_bounded() -> None:
    closed = target(url(free_port()))
    started = time.monotonic()
    assert await probe(closed) == "absent"  # refused at once on loopback
    assert time.monotonic() - started < 0.5
    silent = FakeCamera(free_port(), status=None)
    await silent.open()
    try:
        started = time.monotonic()
        assert await probe(target(url(silent.port)), 0.3) == "absent"
        assert time.monotonic() - started < 0.8
    finally:
        await silent.close()


async def test_wait_ends_as_soon_as_an_absent_camera_answers() -> None:
    cam = FakeCamera(free_port(), status=200)  # closed: connections refused
    watch = ReturnWatch(url(cam.port), "cam", every=0.05)
    assert await watch.wait(0.2, asyncio.Event(), "stalled", MEDIA) is MEDIA  # had video
    stop = asyncio.Event()
    started = time.monotonic()
    waiting = asyncio.create_task(watch.wait(10.0, stop, "Connection refused", None))
    await asyncio.sleep(0.5)
    assert not waiting.done() and watch.probes >= 3
    await cam.open()
    opened = time.monotonic()
    try:
        media = await asyncio.wait_for(waiting, 2.0)
        assert time.monotonic() - opened < 0.3  # one probe interval, not the 10 s back-off
        assert time.monotonic() - started < 1.5
        assert media is MEDIA  # the same camera: ffmpeg starts without another ffprobe
    finally:
        await cam.close()


async def test_a_drop_out_404_then_back(camera: FakeCamera) -> None:
    camera.status = 404  # the port answers, the stream is not there (the test camera's drop-out)
    watch = ReturnWatch(url(camera.port), "cam", every=0.05)
    waiting = asyncio.create_task(watch.wait(10.0, asyncio.Event(), "stalled", MEDIA))
    await asyncio.sleep(0.3)
    assert not waiting.done()
    camera.status = 200
    assert await asyncio.wait_for(waiting, 1.0) is MEDIA


async def test_a_camera_that_is_there_but_fails_gets_the_whole_back_off(
    camera: FakeCamera,
) -> None:
    camera.status = 401  # a wrong password: the camera answers, ffmpeg fails
    watch = ReturnWatch(url(camera.port), "cam", every=0.05)
    started = time.monotonic()
    reason = "Server returned 401 Unauthorized (authorization failed)"
    assert await watch.wait(0.6, asyncio.Event(), reason, None) is None
    assert time.monotonic() - started >= 0.6
    assert watch.probes == 1 and len(camera.requests) == 1  # not hammered


async def test_no_restart_loop_when_probe_and_ffmpeg_disagree(camera: FakeCamera) -> None:
    """ffmpeg says 404 (say, a wrong path behind auth) while the probe sees 401: one early
    restart for the 404 (the camera may have just come back), then the full back-off."""
    camera.status = 401
    watch = ReturnWatch(url(camera.port), "cam", every=0.05)
    watch.known = MEDIA
    reason = "Server returned 404 Not Found"
    started = time.monotonic()
    assert await watch.wait(5.0, asyncio.Event(), reason, None) is MEDIA
    assert time.monotonic() - started < 0.5
    started = time.monotonic()
    assert await watch.wait(0.5, asyncio.Event(), reason, None) is None
    assert time.monotonic() - started >= 0.5


async def test_stop_ends_the_wait() -> None:
    watch = ReturnWatch(url(free_port()), "cam", every=0.05)  # refused: probing on
    stop = asyncio.Event()
    waiting = asyncio.create_task(watch.wait(30.0, stop, "Connection refused", None))
    await asyncio.sleep(0.2)
    stop.set()
    assert await asyncio.wait_for(waiting, 1.0) is None


async def test_no_host_is_a_plain_back_off() -> None:
    watch = ReturnWatch("rtsp:///nothing", "cam")
    started = time.monotonic()
    assert await watch.wait(0.2, asyncio.Event(), "Connection refused", None) is None
    assert time.monotonic() - started >= 0.2 and watch.probes == 0
