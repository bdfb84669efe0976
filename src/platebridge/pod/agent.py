"""The running agent: camera supervisors, HTTP server, heartbeat loop and tunnel on one loop.

Structured concurrency: every long-running task belongs to one :class:`asyncio.TaskGroup`, and
each part pushes its own stop onto one :class:`contextlib.AsyncExitStack` as it starts, so
shutdown undoes the parts in reverse order — tunnel, heartbeat, HTTP server, cameras, then the
signal handlers and the socket — each given a grace period before its task is cancelled.
SIGTERM/SIGINT unwinds the stack (exit 0). A task that fails, or ends when nobody asked it to,
makes the TaskGroup cancel the others; the same stack unwinds and the agent exits 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Collection, Coroutine, Generator
from typing import Any

import uvicorn

from platebridge.core.redact import redact_text
from platebridge.pod.config import PodConfig
from platebridge.pod.heartbeat import HeartbeatLoop, HeartbeatResult
from platebridge.pod.http import create_app
from platebridge.pod.recording.recorder import Recording
from platebridge.pod.supervisor import TERM_GRACE, CameraSupervisor
from platebridge.pod.tunnel import TunnelClient

log = logging.getLogger("platebridge.pod")

SIGNALS = (signal.SIGTERM, signal.SIGINT)
#: Seconds a part asked to stop gets before its task is cancelled.
GRACE = 5.0
#: The heartbeat sends nothing on the way out: a request in flight is not worth waiting for.
HEARTBEAT_GRACE = 1.0


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the agent owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class ListenError(Exception):
    pass


class PartFailed(Exception):
    """A part of the agent failed or ended on its own; the agent stops and exits 1."""


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind before starting anything, so "port in use" is a clean start-up error."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((host, port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


async def finish(tasks: Collection[asyncio.Task[Any]], grace: float) -> None:
    """Wait up to ``grace`` seconds for tasks that were asked to stop, then cancel the rest.
    Never raises: a task's own failure is the TaskGroup's to report."""
    pending = {t for t in tasks if not t.done()}
    if pending:
        _, pending = await asyncio.wait(pending, timeout=grace)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)


async def part(
    name: str,
    work: Coroutine[Any, Any, None],
    stopping: asyncio.Event | None,
    secrets: Collection[str] = (),
) -> None:
    """Run one part of the agent. Failing fails the agent; so does ending before ``stopping``
    is set (``None``: the part may end on its own)."""
    try:
        await work
    except Exception as exc:
        log.error("%s failed: %s: %s", name, type(exc).__name__, redact_text(str(exc), secrets))
        raise PartFailed(name) from exc
    if stopping is not None and not stopping.is_set():
        log.error("%s stopped unexpectedly", name)
        raise PartFailed(name)


class TunnelSwitch:
    """Starts and stops the tunnel client as the portal's heartbeat answers say (config
    ``tunnel: auto``), or keeps it on (``true``). A missing answer changes nothing. Its tasks
    belong to the agent's TaskGroup; after :meth:`close` it starts nothing."""

    def __init__(self, config: PodConfig, tasks: asyncio.TaskGroup) -> None:
        self.config = config
        self.client: TunnelClient | None = None
        self.task: asyncio.Task[None] | None = None
        self._tasks = tasks
        self._closed = False

    def status(self) -> dict[str, Any]:
        if self.client is None:
            return {"state": "off", "streams": 0, "connects": 0}
        return self.client.status()

    def want(self, on: bool) -> None:
        if self._closed:
            return
        if on and self.task is None:
            log.info("tunnel: starting (%s)", "config" if self.config.tunnel is True else "portal")
            client = TunnelClient(self.config)
            work = part("tunnel", client.run(), None, self.config.secrets)
            self.task = self._tasks.create_task(work, name="tunnel")
            self.client = client
        elif not on and self.task is not None:
            log.info("tunnel: stopping, the portal no longer wants it")
            self._tasks.create_task(self._halt(self.client, self.task), name="tunnel-stop")
            self.client, self.task = None, None

    def on_heartbeat(self, result: HeartbeatResult) -> None:
        if self.config.tunnel == "auto" and result.tunnel is not None:
            self.want(result.tunnel)

    @staticmethod
    async def _halt(client: TunnelClient | None, task: asyncio.Task[None]) -> None:
        if client is not None:
            client.stop()
        await finish([task], GRACE)

    async def close(self) -> None:
        """Stop the tunnel, if open, and start no other."""
        self._closed = True
        client, task = self.client, self.task
        self.client, self.task = None, None
        if task is not None:
            await self._halt(client, task)


async def _serve(server: uvicorn.Server, sock: socket.socket) -> None:
    try:
        await server.serve(sockets=[sock])
    except SystemExit as exc:  # uvicorn exits on start-up failure (e.g. a bad TLS key)
        raise RuntimeError("HTTP server failed to start") from exc


def _server(config: PodConfig, app: Any) -> _Server:
    return _Server(
        uvicorn.Config(
            app,
            host=config.listen_host,
            port=config.listen_port,
            ssl_certfile=str(config.tls_cert) if config.tls_cert else None,
            ssl_keyfile=str(config.tls_key) if config.tls_key else None,
            access_log=False,  # the query string carries stream tokens
            log_config=None,
            lifespan="off",
            server_header=False,
        )
    )


def _on_stop(
    stack: contextlib.AsyncExitStack, name: str, stop: Callable[[], Awaitable[None]]
) -> None:
    async def stop_part() -> None:
        log.info("stopping %s", name)
        await stop()

    stack.push_async_callback(stop_part)


async def run_agent(config: PodConfig) -> int:
    """Serve until SIGTERM/SIGINT (0) or until a part fails (1)."""
    started = time.monotonic()
    sock = bind_socket(config.listen_host, config.listen_port)
    try:
        async with contextlib.AsyncExitStack() as stack:
            stack.callback(sock.close)
            await _run(config, started, sock, stack)
    except ExceptionGroup as group:
        if group.subgroup(lambda e: not isinstance(e, PartFailed | ExceptionGroup)) is not None:
            raise
        return 1
    return 0


async def _run(
    config: PodConfig, started: float, sock: socket.socket, stack: contextlib.AsyncExitStack
) -> None:
    """Start the parts in order, each pushing its stop onto ``stack``; wait for a signal."""
    loop = asyncio.get_running_loop()
    stop, stopping = asyncio.Event(), asyncio.Event()
    for sig in SIGNALS:
        loop.add_signal_handler(sig, stop.set)
        stack.callback(loop.remove_signal_handler, sig)
    config.hls_dir.mkdir(parents=True, exist_ok=True)
    tasks = await stack.enter_async_context(asyncio.TaskGroup())
    secrets = config.secrets

    heartbeat: HeartbeatLoop | None = None

    def changed() -> None:
        if heartbeat is not None:
            heartbeat.poke()

    recording = await asyncio.to_thread(Recording, config)
    stack.callback(recording.close)
    supervisors = [
        CameraSupervisor(config, cam, changed, recorder=recording.recorder(cam.camera_id))
        for cam in config.cameras
    ]
    states = {s.camera.camera_id: s.state for s in supervisors}
    tunnel = TunnelSwitch(config, tasks) if config.tunnel is not False else None
    on_beat = tunnel.on_heartbeat if tunnel else None
    heartbeat = HeartbeatLoop(config, states, on_beat, recording)
    app = create_app(
        config,
        states,
        started_at=started,
        tunnel_status=tunnel.status if tunnel is not None else None,
        recording=recording,
    )
    server = _server(config, app)

    # 1. cameras
    cameras = [
        tasks.create_task(
            part(f"camera {s.camera.camera_id}", s.run(), stopping, secrets),
            name=f"camera-{s.camera.camera_id}",
        )
        for s in supervisors
    ]

    async def stop_cameras() -> None:
        await asyncio.gather(*(s.stop() for s in supervisors))
        await finish(cameras, TERM_GRACE + GRACE)

    _on_stop(stack, "cameras", stop_cameras)

    # 1b. recording: indexing growing files, retention (after the cameras on the way out)
    keeper = tasks.create_task(
        part("recording", recording.run(), stopping, secrets), name="recording"
    )

    async def stop_recording() -> None:
        recording.stop()
        await finish([keeper], GRACE)

    _on_stop(stack, "recording", stop_recording)

    # 2. the HTTP server
    http = tasks.create_task(part("HTTP server", _serve(server, sock), stopping), name="http")

    async def stop_http() -> None:
        server.should_exit = True
        await finish([http], GRACE)

    _on_stop(stack, "HTTP server", stop_http)

    # 3. the heartbeat
    beat = tasks.create_task(
        part("heartbeat", heartbeat.run(), stopping, secrets), name="heartbeat"
    )

    async def stop_heartbeat() -> None:
        heartbeat.stop()
        await finish([beat], HEARTBEAT_GRACE)

    _on_stop(stack, "heartbeat", stop_heartbeat)

    # 4. the tunnel (on now, or when a heartbeat answer says so)
    if tunnel is not None:
        _on_stop(stack, "tunnel", tunnel.close)
        if config.tunnel is True:
            tunnel.want(True)

    log.info(
        "POD %s serving %d camera(s) on %s:%d",
        config.pod_id,
        len(supervisors),
        config.listen_host,
        config.listen_port,
    )
    try:
        await stop.wait()
    finally:
        stopping.set()
        log.info("shutting down")
