"""Helpers for the tunnel tests: a network namespace, a TCP load balancer, the tunnel POD config
and a portal + camera + agent world (processes from ``tests/support``), a scripted HLS player
and the portal's signed internal stats endpoint."""

from __future__ import annotations

import contextlib
import os
import random
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from platebridge.portal.tunnel.hub import (
    SIGNATURE_HEADER,
    TIME_HEADER,
    forward_key,
    forward_signature,
)
from platebridge.portal.tunnel.routes import STATS_PATH
from tests.support.agent import Agent
from tests.support.builders import pod_config
from tests.support.camera import TestCamera
from tests.support.portal import SeededCompany, cli, login, run_portal, seed_company
from tests.support.procs import wait_until

SECRET_KEY = "tunnel-test-secret-key-0123456789abcdef"


# --- portal helpers -----------------------------------------------------------------------------


def portal_stats(base: str) -> dict[str, Any]:
    at = int(time.time())
    sig = forward_signature(forward_key(SECRET_KEY), "stats", "", "", at)
    r = httpx.get(
        base + STATS_PATH, headers={TIME_HEADER: str(at), SIGNATURE_HEADER: sig}, timeout=5
    )
    r.raise_for_status()
    data: dict[str, Any] = r.json()
    return data


def set_mode(db_url: str, tenant: SeededCompany, mode: str) -> None:
    # --company: a shared test database holds many companies with the same pod id
    cli(
        db_url,
        "pod",
        "set-mode",
        "--pod-id",
        tenant.pod_id,
        "--mode",
        mode,
        "--company",
        tenant.company_id,
    )


def pod_row(base: str, auth: dict[str, str], pod_id: str) -> dict[str, Any]:
    r = httpx.get(f"{base}/api/pods/{pod_id}", headers=auth, timeout=5)
    r.raise_for_status()
    data: dict[str, Any] = r.json()
    return data


def wait_tunnel(base: str, auth: dict[str, str], pod_id: str, timeout: float = 30) -> None:
    wait_until(
        lambda: (
            (row := pod_row(base, auth, pod_id))["tunnel_connected"] and row["status"] == "online"
        ),
        timeout=timeout,
        what="tunnel connected and pod online",
    )


def stream_token(base: str, tenant: SeededCompany, camera_id: str = "gate-camera-1") -> str:
    """A viewer token, once the camera streams (the POD reports it inactive until then)."""
    auth = login(base, tenant.email, tenant.password)

    def issue() -> httpx.Response | None:
        r = httpx.post(
            f"{base}/api/pod/stream-token",
            headers=auth,
            json={"pod_id": tenant.pod_id, "camera_id": camera_id},
            timeout=10,
        )
        if r.status_code == 409 and r.json()["error"] == "camera_inactive":
            return None
        assert r.status_code == 200, r.text
        return r

    r = wait_until(issue, timeout=30, what="camera active")
    return str(r.json()["token"])


def proxy_url(base: str, tenant: SeededCompany, token: str) -> str:
    return f"{base}/api/pod/proxy-stream/{tenant.pod_id}?camera_id=gate-camera-1&token={token}"


def ffmpeg_decode(url: str, frames: int = 15, timeout: float = 60) -> int:
    """Decode ``frames`` video frames from the HLS ``url`` with ffmpeg; returns the count."""
    result = subprocess.run(
        [
            *("ffmpeg", "-nostdin", "-loglevel", "error", "-i", url),
            *("-map", "0:v:0", "-frames:v", str(frames), "-f", "framemd5", "-"),
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return sum(1 for line in result.stdout.splitlines() if line and not line.startswith("#"))


# --- the POD agent --------------------------------------------------------------------------


def agent_config(tmp: Path, tenant: SeededCompany, rtsp_url: str, **over: Any) -> dict[str, Any]:
    """The support POD config with the tunnel on (fast reconnects and pings) and an HLS directory
    of its own (several agents may share ``tmp``)."""
    tunnel: dict[str, Any] = {
        "hls_dir": str(tmp / f"hls-{uuid.uuid4().hex[:6]}"),
        "tunnel": True,
        "tunnel_backoff_max": 2,
        "tunnel_ping_interval": 2,
    }
    return pod_config(tmp, rtsp_url, tenant=tenant, **(tunnel | over))


TUNNEL_ENV = {"PLATEBRIDGE_SECRET_KEY": SECRET_KEY}  # signs forwarded requests and stats


@dataclass
class TunnelWorld:
    base: str
    db_url: str
    tenant: SeededCompany
    camera: TestCamera
    config: dict[str, Any]
    agent: Agent

    @property
    def pod_health(self) -> str:
        return f"http://127.0.0.1:{self.config['listen_port']}/health"


@contextlib.contextmanager
def tunnel_world(
    tmp: Path,
    db_url: str,
    env: Mapping[str, str] | None = None,
    *,
    mode: str | None = "tunnel",
    without: Sequence[str] = (),
    **config: Any,
) -> Iterator[TunnelWorld]:
    """A portal (``TUNNEL_ENV`` + ``env``), a seeded company whose pod is set to ``mode``, a
    test camera and a POD agent (``agent_config`` + ``config``, minus the keys in ``without``)
    pointed at the portal; everything stopped at the end."""
    with run_portal(db_url, TUNNEL_ENV | dict(env or {}), log_dir=tmp) as base:
        tenant = seed_company(db_url)
        if mode is not None:
            set_mode(db_url, tenant, mode)
        camera = TestCamera(tmp)
        camera.start()
        agent: Agent | None = None
        try:
            cfg = agent_config(tmp, tenant, camera.url, portal_url=base, **config)
            for key in without:
                del cfg[key]
            agent = Agent(tmp, cfg)
            yield TunnelWorld(base, db_url, tenant, camera, cfg, agent)
        finally:
            if agent is not None:
                agent.close()
            camera.stop()


# --- a TCP load balancer ----------------------------------------------------------------------


class Balancer:
    """A tiny TCP load balancer in a thread: each connection goes to the first backend that
    accepts it (failover, like a health-checked LB). ``drop()`` cuts every connection;
    ``paused`` refuses new ones; ``rate`` (bytes/s) slows the client→backend direction."""

    def __init__(self, backends: list[tuple[str, int]], host: str = "127.0.0.1") -> None:
        self.backends = backends
        self.paused = False
        self.rate: float | None = None
        self.connections = 0
        self._listener = socket.create_server((host, 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self.url = f"http://{host}:{self.port}"
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self.paused:
                client.close()
                continue
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        for backend in self.backends:
            try:
                upstream = socket.create_connection(backend, timeout=1)
            except OSError:
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open.update({client, upstream})
                self.connections += 1
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            self._pump(upstream, client, False)
            return
        client.close()

    def _pump(self, src: socket.socket, dst: socket.socket, limited: bool) -> None:
        try:
            while True:
                data = src.recv(4096 if limited else 65536)
                if not data:
                    break
                dst.sendall(data)
                if limited and self.rate:
                    time.sleep(len(data) / self.rate)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            with self._lock:
                self._open.discard(src)
                self._open.discard(dst)

    def drop(self) -> None:
        with self._lock:
            sockets = list(self._open)
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        self.drop()
        self._thread.join(5)


# --- a scripted HLS player --------------------------------------------------------------------


@dataclass
class Player:
    """Polls the playlist once a second and fetches each new segment, like hls.js does."""

    playlist_url: str
    ok: list[float] = field(default_factory=list)
    errors: list[tuple[float, str]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)

    def _run(self) -> None:
        seen: set[str] = set()
        base = self.playlist_url.split("/api/", 1)[0]
        with httpx.Client(timeout=10) as client:
            while not self._stop.is_set():
                try:
                    r = client.get(self.playlist_url)
                    if r.status_code != 200:
                        raise RuntimeError(f"playlist HTTP {r.status_code}")
                    uris = [ln for ln in r.text.splitlines() if ln and not ln.startswith("#")]
                    for uri in uris[-2:]:
                        if uri in seen:
                            continue
                        seg = client.get(base + uri if uri.startswith("/") else uri)
                        if seg.status_code != 200 or not seg.content.startswith(b"\x47"):
                            raise RuntimeError(f"segment HTTP {seg.status_code}")
                        seen.add(uri)
                        self.ok.append(time.monotonic())
                except (httpx.HTTPError, RuntimeError) as exc:
                    self.errors.append((time.monotonic(), f"{type(exc).__name__}: {exc}"))
                self._stop.wait(0.5)

    def ok_after(self, t: float) -> float | None:
        return next((x for x in self.ok if x > t), None)


# --- network namespaces -------------------------------------------------------------------------


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=10)


def netns_problem() -> str | None:
    """None when this machine can create network namespaces, else why not."""
    if os.geteuid() != 0:
        return "not root"
    name = f"pbchk{random.randrange(16**6):06x}"
    try:
        result = _ip("netns", "add", name, check=False)
    except FileNotFoundError:
        return "iproute2 is not installed"
    if result.returncode != 0:
        return result.stderr.strip() or "ip netns add failed"
    _ip("netns", "del", name, check=False)
    return None


def require_netns_or_fallback() -> bool:
    """True: run the namespace variant. False: this machine cannot (the test says so and uses
    its fallback). On CI (``CI=true``) the namespace variant must run: fail instead."""
    problem = netns_problem()
    if problem is None:
        return True
    message = f"!!! network namespaces unavailable ({problem})"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message}: CI must run the namespace variant", pytrace=False)
    import warnings

    warnings.warn(f"{message}: falling back to an SSRF-refused POD address", stacklevel=2)
    return False


@dataclass
class Netns:
    """A namespace behind a veth pair: ``host_ip`` on our side, ``pod_ip`` inside. With
    ``nat=True`` nftables in the namespace drops new inbound connections — like a NAT router:
    the POD can dial out, nothing can dial in."""

    name: str
    host_if: str
    pod_if: str
    host_ip: str
    pod_ip: str
    prefix: list[str]


@contextlib.contextmanager
def netns(nat: bool = True) -> Iterator[Netns]:
    tag = f"{random.randrange(16**6):06x}"
    name, host_if, pod_if = f"pbt{tag}", f"pbh{tag}", f"pbp{tag}"
    a, b = random.randrange(0, 256), random.randrange(0, 64) * 4
    host_ip, pod_ip = f"10.213.{a}.{b + 1}", f"10.213.{a}.{b + 2}"
    try:
        _ip("netns", "add", name)
        _ip("link", "add", host_if, "type", "veth", "peer", "name", pod_if)
        _ip("link", "set", pod_if, "netns", name)
        _ip("addr", "add", f"{host_ip}/30", "dev", host_if)
        _ip("link", "set", host_if, "up")
        ns = ["ip", "netns", "exec", name]
        subprocess.run([*ns, "ip", "addr", "add", f"{pod_ip}/30", "dev", pod_if], check=True)
        subprocess.run([*ns, "ip", "link", "set", pod_if, "up"], check=True)
        subprocess.run([*ns, "ip", "link", "set", "lo", "up"], check=True)
        subprocess.run([*ns, "ip", "route", "add", "default", "via", host_ip], check=True)
        if nat:
            rules = (
                "table inet pbnat {\n chain input {\n  type filter hook input priority 0;"
                " policy accept;\n  ct state established,related accept\n"
                f'  iifname "{pod_if}" drop\n }}\n}}\n'
            )
            subprocess.run([*ns, "nft", "-f", "-"], input=rules, text=True, check=True)
        yield Netns(name, host_if, pod_if, host_ip, pod_ip, ns)
    finally:
        _ip("link", "del", host_if, check=False)
        _ip("netns", "del", name, check=False)


class NsCamera(TestCamera):
    """The RTSP test camera on the POD's LAN (inside its namespace)."""

    def __init__(self, log_dir: Path, prefix: Sequence[str]) -> None:
        super().__init__(log_dir)
        self.prefix = list(prefix)

    def argv(self) -> list[str]:
        return [*self.prefix, *super().argv()]
