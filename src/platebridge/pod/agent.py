"""The running agent: camera supervisors, heartbeat loop and HTTP server on one asyncio loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import time
from collections.abc import Generator
from typing import Any

import uvicorn

from platebridge.pod.config import PodConfig
from platebridge.pod.heartbeat import HeartbeatLoop, HeartbeatResult
from platebridge.pod.http import create_app
from platebridge.pod.supervisor import CameraSupervisor
from platebridge.pod.tunnel import TunnelClient

log = logging.getLogger("platebridge.pod")


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the agent owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class ListenError(Exception):
    pass


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


class TunnelSwitch:
    """Starts and stops the tunnel client as the portal's heartbeat answers say (config
    ``tunnel: auto``), or keeps it on (``true``). A missing answer changes nothing."""

    def __init__(self, config: PodConfig) -> None:
        self.config = config
        self.client: TunnelClient | None = None
        self.task: asyncio.Task[None] | None = None
        self._stopping: set[asyncio.Task[None]] = set()

    def status(self) -> dict[str, Any]:
        if self.client is None:
            return {"state": "off", "streams": 0, "connects": 0}
        return self.client.status()

    def want(self, on: bool) -> None:
        if on and self.task is None:
            log.info("tunnel: starting (%s)", "config" if self.config.tunnel is True else "portal")
            self.client = TunnelClient(self.config)
            self.task = asyncio.create_task(self.client.run(), name="tunnel")
        elif not on and self.task is not None:
            log.info("tunnel: stopping, the portal no longer wants it")
            self._stopping.add(asyncio.create_task(self._halt(self.client, self.task)))
            self.client, self.task = None, None

    def on_heartbeat(self, result: HeartbeatResult) -> None:
        if self.config.tunnel == "auto" and result.tunnel is not None:
            self.want(result.tunnel)

    @staticmethod
    async def _halt(client: TunnelClient | None, task: asyncio.Task[None]) -> None:
        if client is not None:
            client.stop()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait({task}, timeout=5)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    async def close(self) -> None:
        self.want(False)
        await asyncio.gather(*self._stopping, return_exceptions=True)


async def _serve(server: uvicorn.Server, sock: socket.socket) -> None:
    try:
        await server.serve(sockets=[sock])
    except SystemExit as exc:  # uvicorn exits on start-up failure (e.g. a bad TLS key)
        raise RuntimeError("HTTP server failed to start") from exc


async def run_agent(config: PodConfig) -> int:
    started = time.monotonic()
    sock = bind_socket(config.listen_host, config.listen_port)
    config.hls_dir.mkdir(parents=True, exist_ok=True)
    heartbeat: HeartbeatLoop | None = None

    def changed() -> None:
        if heartbeat is not None:
            heartbeat.poke()

    supervisors = [CameraSupervisor(config, cam, changed) for cam in config.cameras]
    states = {s.camera.camera_id: s.state for s in supervisors}
    tunnel = TunnelSwitch(config) if config.tunnel is not False else None
    heartbeat = HeartbeatLoop(config, states, tunnel.on_heartbeat if tunnel else None)
    app = create_app(
        config,
        states,
        started_at=started,
        tunnel_status=tunnel.status if tunnel is not None else None,
    )
    server = _Server(
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
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    tasks = [asyncio.create_task(s.run(), name=f"camera-{s.camera.camera_id}") for s in supervisors]
    hb_task = asyncio.create_task(heartbeat.run(), name="heartbeat")
    serve_task = asyncio.create_task(_serve(server, sock), name="http")
    if tunnel is not None and config.tunnel is True:
        tunnel.want(True)
    stop_task = asyncio.create_task(stop.wait())
    log.info(
        "POD %s serving %d camera(s) on %s:%d",
        config.pod_id,
        len(supervisors),
        config.listen_host,
        config.listen_port,
    )
    exit_code = 0
    try:
        await asyncio.wait({serve_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
        if serve_task.done():
            log.error("HTTP server stopped unexpectedly")
            exit_code = 1
    finally:
        log.info("shutting down")
        server.should_exit = True
        heartbeat.stop()
        if tunnel is not None:
            await tunnel.close()
        await asyncio.gather(*(s.stop() for s in supervisors))
        await asyncio.gather(*tasks, return_exceptions=True)
        hb_task.cancel()
        stop_task.cancel()
        await asyncio.gather(hb_task, serve_task, stop_task, return_exceptions=True)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        sock.close()
    return exit_code
