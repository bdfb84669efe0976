"""Which way the portal fetches a pod's stream: the plain proxy or the POD's tunnel.

``stream_mode``:

* ``proxy`` / ``direct`` — the POD's reported address (SSRF-guarded), as before;
* ``tunnel`` — always the tunnel (a POD without one answers 502 ``upstream_unreachable``);
* ``auto`` — the proxy when the reported address is allowed *and* a TCP connect to it succeeded
  recently (:class:`ReachabilityCache`: one bounded connect per pod address, remembered 30 s,
  failures 15 s), otherwise the tunnel when one is up, otherwise the proxy's own answer.

Only the literal, SSRF-approved address is ever connected to; the tunnel never needs one.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Literal

from platebridge.core.aio import within
from platebridge.portal.errors import ApiError
from platebridge.portal.models import Pod
from platebridge.portal.streaming.relay import PodRelay
from platebridge.portal.streaming.ssrf import (
    AddressRefused,
    IPNetwork,
    check_pod_address,
    pod_base_url,
)
from platebridge.portal.tunnel.hub import TunnelHub
from platebridge.portal.tunnel.transport import tunnel_base_url

Method = Literal["proxy", "tunnel"]
REACHABLE_FOR = 30.0
UNREACHABLE_FOR = 15.0
PROBE_TIMEOUT = 1.0
_MAX_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class Upstream:
    method: Method
    base: str
    relay: PodRelay


class ReachabilityCache:
    """``reachable(ip, port)``: a remembered TCP connect (no request is sent)."""

    def __init__(self, timeout: float = PROBE_TIMEOUT) -> None:
        self.timeout = timeout
        self._seen: dict[tuple[str, int], tuple[bool, float]] = {}
        self._inflight: dict[tuple[str, int], asyncio.Future[bool]] = {}

    def peek(self, ip: str, port: int) -> bool | None:
        """The remembered answer, without probing (None: unknown or expired)."""
        seen = self._seen.get((ip, port))
        return seen[0] if seen is not None and seen[1] > time.monotonic() else None

    def forget(self, ip: str, port: int) -> None:
        self._seen.pop((ip, port), None)

    def mark_unreachable(self, ip: str, port: int) -> None:
        self._seen[(ip, port)] = (False, time.monotonic() + UNREACHABLE_FOR)

    async def reachable(self, ip: str, port: int) -> bool:
        key = (ip, port)
        now = time.monotonic()
        seen = self._seen.get(key)
        if seen is not None and seen[1] > now:
            return seen[0]
        pending = self._inflight.get(key)
        if pending is not None:  # one probe per address at a time
            return await asyncio.shield(pending)
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            ok = await self._probe(ip, port)
            if len(self._seen) > _MAX_ENTRIES:
                self._seen.clear()
            self._seen[key] = (ok, time.monotonic() + (REACHABLE_FOR if ok else UNREACHABLE_FOR))
            future.set_result(ok)
            return ok
        finally:
            self._inflight.pop(key, None)
            if not future.done():
                future.set_result(False)

    async def _probe(self, ip: str, port: int) -> bool:
        try:
            _, writer = await within(asyncio.open_connection(ip, port), self.timeout)
        except (OSError, TimeoutError):
            return False
        writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            await within(writer.wait_closed(), self.timeout)
        return True


def proxy_refusal(pod: Pod, networks: tuple[IPNetwork, ...]) -> str | None:
    """Why the portal will not connect to this pod, or None when it may."""
    if not pod.ip_address:
        return "the pod has not reported an address yet"
    try:
        pod_base_url(pod.ip_address, pod.stream_port, networks)
    except AddressRefused as exc:
        return exc.message
    except ValueError:
        return "the pod's stream port is invalid"
    return None


def pod_base(pod: Pod, networks: tuple[IPNetwork, ...]) -> str:
    """``http://ip:port`` of the pod, or 409 ``pod_address_refused`` (nothing is connected)."""
    reason = proxy_refusal(pod, networks)
    if reason is not None or pod.ip_address is None:
        raise ApiError(
            409, "pod_address_refused", f"the portal will not connect to this pod: {reason}"
        )
    return pod_base_url(pod.ip_address, pod.stream_port, networks)


def _proxy_allowed(pod: Pod, networks: tuple[IPNetwork, ...]) -> bool:
    if not pod.ip_address:
        return False
    try:
        check_pod_address(pod.ip_address, networks)
    except ValueError:  # AddressRefused is a ValueError
        return False
    return True


async def uses_tunnel(
    pod: Pod, hub: TunnelHub, networks: tuple[IPNetwork, ...], cache: ReachabilityCache
) -> bool:
    """True when this pod's streams go through its tunnel right now."""
    if pod.stream_mode == "tunnel":
        return True
    if pod.stream_mode != "auto":
        return False
    address = pod.ip_address
    if (
        address is not None
        and _proxy_allowed(pod, networks)
        and await cache.reachable(address, pod.stream_port)
    ):
        return False
    return bool(await hub.connected([pod.id]))


def tunnel_upstream(pod: Pod, relay: PodRelay) -> Upstream:
    return Upstream("tunnel", tunnel_base_url(pod.id), relay)
