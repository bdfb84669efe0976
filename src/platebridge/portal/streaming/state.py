"""What the streaming routes share in one portal process (:class:`StreamingState`), and how it
picks a pod's upstream: its SSRF-approved address (proxy) or its tunnel."""

from __future__ import annotations

from dataclasses import dataclass, field

from platebridge.portal.models import Pod
from platebridge.portal.services import audit
from platebridge.portal.settings import PortalSettings
from platebridge.portal.streaming.access_cache import AccessCache
from platebridge.portal.streaming.live import LiveRelays
from platebridge.portal.streaming.relay import PodRelay
from platebridge.portal.streaming.relay_errors import UpstreamError
from platebridge.portal.streaming.select import (
    ReachabilityCache,
    Upstream,
    pod_base,
    proxy_refusal,
    tunnel_upstream,
    uses_tunnel,
)
from platebridge.portal.streaming.ssrf import IPNetwork, parse_networks
from platebridge.portal.streaming.tokens import UpstreamTokens
from platebridge.portal.streaming.tunnel_relay import tunnel_relay
from platebridge.portal.tunnel.hub import TunnelHub


@dataclass
class StreamingState:
    """Everything the streaming routes share in one portal process (built in the lifespan)."""

    relay: PodRelay
    networks: tuple[IPNetwork, ...]
    upstream_tokens: UpstreamTokens
    viewings: audit.ViewingTracker
    #: Method 4: the tunnel hub and its relay, and for ``auto`` pods a
    #: remembered reachability of their reported addresses.
    hub: TunnelHub | None = None
    tunnel_relay: PodRelay | None = None
    reachability: ReachabilityCache = field(default_factory=ReachabilityCache)
    #: Recent viewer authorisations (``stream_auth_cache_seconds``; off when 0).
    access_cache: AccessCache = field(default_factory=lambda: AccessCache(0))
    #: The live fMP4 upstreams, one per watched camera (``streaming/live.py``).
    live: LiveRelays = field(default_factory=LiveRelays)

    @classmethod
    def create(cls, settings: PortalSettings, hub: TunnelHub | None = None) -> StreamingState:
        """The complete state: with a hub, its tunnel relay too (the lifespan builds it once)."""
        networks = parse_networks(settings.pod_networks)
        relay = PodRelay.create(
            settings.stream_connect_timeout,
            settings.stream_read_timeout,
            allowed_networks=networks,
        )
        return cls(
            relay=relay,
            networks=networks,
            upstream_tokens=UpstreamTokens(settings.upstream_token_ttl),
            viewings=audit.ViewingTracker(),
            access_cache=AccessCache(settings.stream_auth_cache_seconds),
            hub=hub,
            tunnel_relay=tunnel_relay(hub, settings) if hub is not None else None,
        )

    async def aclose(self) -> None:
        await self.live.aclose()
        await self.relay.aclose()
        if self.tunnel_relay is not None:
            await self.tunnel_relay.aclose()

    def token_method(self, pod: Pod) -> audit.Method:
        """How a token's viewer will be served (for the audit row; no connection is made)."""
        if pod.stream_mode == "direct":
            return "direct"
        if pod.stream_mode == "tunnel":
            return "tunnel"
        if pod.stream_mode == "auto" and self.hub is not None:
            refused = proxy_refusal(pod, self.networks) is not None
            known = None
            if pod.ip_address and not refused:
                known = self.reachability.peek(pod.ip_address, pod.stream_port)
            if known is False or (known is None and refused):
                return "tunnel"
        return "proxy"

    async def upstream_for(self, pod: Pod) -> Upstream:
        """Proxy to the pod's address, or its tunnel (``tunnel``; ``auto`` when unreachable)."""
        hub, relay = self.hub, self.tunnel_relay
        if (
            hub is not None
            and relay is not None
            and await uses_tunnel(pod, hub, self.networks, self.reachability)
        ):
            return tunnel_upstream(pod, relay)
        return Upstream("proxy", pod_base(pod, self.networks), self.relay)

    def upstream_failed(self, pod: Pod, up: Upstream, exc: UpstreamError) -> bool:
        """An ``auto`` pod's proxy failed to connect: remember it; True when the tunnel may help."""
        if pod.stream_mode != "auto" or up.method != "proxy" or pod.ip_address is None:
            return False
        if exc.error not in ("upstream_unreachable", "upstream_timeout"):
            return False
        self.reachability.mark_unreachable(pod.ip_address, pod.stream_port)
        return True
