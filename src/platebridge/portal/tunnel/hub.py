"""The process-wide tunnel hub: the tunnels this process holds, and where the others are.

* ``attach``/``detach`` keep one tunnel per pod in this process (a new connection replaces the
  old one) and claim/release it in the :mod:`registry`.
* A refresher task re-announces this node and refreshes its claims every ``ttl / 3`` seconds;
  a claim taken over by another node (the POD reconnected elsewhere) closes the local tunnel.
* ``holder_url(pod)`` finds the node holding a pod's tunnel; requests for it are forwarded
  to that node's internal endpoint, signed with :func:`forward_signature`.
* Every ``ttl / 3`` seconds the same task asks the database (``key_check``) whether the keys
  the local tunnels authenticated with still authorise them, and closes those that do not
  (1008): a decommission or key rotation from **any** process — another portal, the CLI —
  ends the tunnel wherever it is held, with or without Redis (docs/tunnel.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

from platebridge.core import tunnel as proto
from platebridge.core.aio import within
from platebridge.core.http_client import new_async_client
from platebridge.portal.tunnel.connection import TunnelConnection
from platebridge.portal.tunnel.registry import MemoryRegistry, RedisRegistry, Registry

log = logging.getLogger("platebridge.portal.tunnel")

FORWARD_PREFIX = "/internal/tunnel"
SIGNATURE_HEADER = "X-PB-Tunnel-Signature"
TIME_HEADER = "X-PB-Tunnel-Time"
ERROR_HEADER = "X-PB-Tunnel-Error"
MAX_CLOCK_SKEW = 30
#: Close code of a tunnel whose key no longer authorises it (revoked, pod decommissioned).
CLOSE_REVOKED = 1008

#: Which of these key hashes still authorise a tunnel (the database; ``routes.valid_keys``).
KeyCheck = Callable[[list[bytes]], Awaitable[set[bytes]]]


def forward_key(secret_key: str) -> bytes:
    """The HMAC key for node-to-node forwarding, derived from the portal's secret key."""
    return hmac.new(secret_key.encode(), b"platebridge tunnel forward v1", hashlib.sha256).digest()


def forward_signature(key: bytes, what: str, path: str, query: str, at: int) -> str:
    message = f"{what}\n{path}\n{query}\n{at}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def verify_forward(key: bytes, what: str, path: str, query: str, at: str, sig: str) -> bool:
    if not at.isascii() or not at.isdigit() or abs(int(at) - time.time()) > MAX_CLOCK_SKEW:
        return False
    expected = forward_signature(key, what, path, query, int(at))
    return hmac.compare_digest(expected.encode(), sig.encode())


@dataclass
class TunnelHub:
    registry: Registry
    node_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    node_url: str | None = None
    ttl: int = 15
    window: int = proto.DEFAULT_WINDOW
    max_streams: int = proto.DEFAULT_MAX_STREAMS
    forward_timeout: float = 3.0
    local: dict[uuid.UUID, TunnelConnection] = field(default_factory=dict)
    #: The key hash each local tunnel authenticated with (re-checked by the refresher).
    keys: dict[uuid.UUID, bytes] = field(default_factory=dict)
    key_check: KeyCheck | None = None
    key: bytes = b""
    _client: httpx.AsyncClient | None = None
    _refresher: asyncio.Task[None] | None = None

    @classmethod
    def create(
        cls,
        *,
        redis_url: str | None,
        node_url: str | None,
        ttl: int,
        window: int,
        max_streams: int,
        forward_timeout: float,
    ) -> TunnelHub:
        registry: Registry = (
            RedisRegistry.from_url(redis_url, ttl) if redis_url else MemoryRegistry()
        )
        return cls(
            registry=registry,
            node_url=node_url.rstrip("/") if node_url else None,
            ttl=ttl,
            window=window,
            max_streams=max_streams,
            forward_timeout=forward_timeout,
        )

    @property
    def clustered(self) -> bool:
        return isinstance(self.registry, RedisRegistry)

    @property
    def client(self) -> httpx.AsyncClient:
        """The pooled client for forwarding to other nodes."""
        if self._client is None:
            # no read deadline here: each forwarded request carries the relay's own
            self._client = new_async_client(
                timeout=httpx.Timeout(self.forward_timeout, read=None),
                component="portal-tunnel",
                limits=httpx.Limits(max_connections=200, keepalive_expiry=4.0),
            )
        return self._client

    async def start(self, secret_key: str) -> None:
        self.key = forward_key(secret_key)
        if self.clustered and not self.node_url:
            log.warning(
                "PLATEBRIDGE_REDIS_URL is set but PLATEBRIDGE_NODE_URL is not: tunnels held by "
                "this process cannot be reached from other portal processes"
            )
        await self._safe(self.registry.announce(self.node_id, self.node_url), "announce")
        self._refresher = asyncio.create_task(self._refresh_loop(), name="tunnel-registry")

    async def aclose(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            await asyncio.gather(self._refresher, return_exceptions=True)
        for conn in list(self.local.values()):
            conn.close(proto.CLOSE_SHUTDOWN, "portal shutting down")
            with contextlib.suppress(TimeoutError):
                await within(conn.closed.wait(), 3)
        for pod in list(self.local):
            await self._safe(self.registry.release(pod, self.node_id), "release")
        self.local.clear()
        if self._client is not None:
            await self._client.aclose()
        await self.registry.aclose()

    async def _safe(self, work: object, what: str) -> object:
        try:
            return await work  # type: ignore[misc]
        except Exception as exc:  # Redis down: tunnels in this process keep working
            log.warning("tunnel registry %s failed: %s", what, type(exc).__name__)
            return None

    # --- tunnels ------------------------------------------------------------------------------

    async def attach(self, conn: TunnelConnection, key_hash: bytes | None = None) -> None:
        old = self.local.get(conn.pod_key)
        self.local[conn.pod_key] = conn
        if key_hash is not None:
            self.keys[conn.pod_key] = key_hash
        if old is not None:
            log.info("tunnel of pod %s replaced by a newer connection", conn.pod_id)
            old.close(proto.CLOSE_REPLACED, "replaced by a newer tunnel")
        await self._safe(self.registry.claim(conn.pod_key, self.node_id), "claim")
        log.info("tunnel of pod %s connected", conn.pod_id)

    async def detach(self, conn: TunnelConnection) -> None:
        if self.local.get(conn.pod_key) is conn:
            del self.local[conn.pod_key]
            self.keys.pop(conn.pod_key, None)
            await self._safe(self.registry.release(conn.pod_key, self.node_id), "release")
            log.info("tunnel of pod %s disconnected", conn.pod_id)

    async def holder_url(self, pod: uuid.UUID) -> str | None:
        """Internal base URL of the *other* node holding ``pod``'s tunnel, if any."""
        holders = await self.registry.holders([pod])
        node = holders.get(pod)
        if node is None or node == self.node_id:
            return None
        return await self.registry.node_url(node)

    async def connected(self, pods: list[uuid.UUID]) -> set[uuid.UUID]:
        """Which of ``pods`` have a tunnel up on any node (for the pods list)."""
        up = {p for p in pods if p in self.local}
        rest = [p for p in pods if p not in up]
        if rest:
            try:
                holders = await self.registry.holders(rest)
            except Exception as exc:
                log.warning("tunnel registry lookup failed: %s", type(exc).__name__)
                holders = {}
            up.update(p for p, node in holders.items() if node != self.node_id)
        return up

    def stats(self) -> dict[str, object]:
        return {
            "node_id": self.node_id,
            "tunnels": len(self.local),
            "streams": sum(c.active_streams for c in self.local.values()),
            "tasks": len(asyncio.all_tasks()),
        }

    async def _refresh_loop(self) -> None:
        interval = max(1.0, self.ttl / 3)
        while True:
            await asyncio.sleep(interval)
            await self._safe(self.registry.announce(self.node_id, self.node_url), "announce")
            for pod, conn in list(self.local.items()):
                held = await self._safe(self.registry.refresh(pod, self.node_id), "refresh")
                if held is False and self.local.get(pod) is conn:
                    log.info("tunnel of pod %s moved to another portal process", conn.pod_id)
                    del self.local[pod]
                    self.keys.pop(pod, None)
                    conn.close(proto.CLOSE_REPLACED, "replaced by a newer tunnel")
            await self.recheck_keys()

    async def recheck_keys(self) -> int:
        """Close the local tunnels whose key no longer authorises them; how many were closed.
        A failed check (database down) closes nothing."""
        if self.key_check is None or not self.keys:
            return 0
        held = {pod: (conn, self.keys.get(pod)) for pod, conn in self.local.items()}
        hashes = sorted({k for _, k in held.values() if k is not None})
        try:
            valid = await self.key_check(hashes)
        except Exception as exc:
            log.warning("tunnel key re-check failed: %s", type(exc).__name__)
            return 0
        closed = 0
        for pod, (conn, key_hash) in held.items():
            if key_hash is None or key_hash in valid or self.local.get(pod) is not conn:
                continue
            log.warning("tunnel of pod %s closed: its key was revoked", conn.pod_id)
            conn.close(CLOSE_REVOKED, "pod key revoked or pod decommissioned")
            closed += 1
        return closed
