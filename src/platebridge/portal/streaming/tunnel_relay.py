"""The relay for tunnelled pods: PodRelay's deadlines and errors, the tunnel as transport.

It lives in ``streaming`` (not ``tunnel``) so the dependency runs one way only: streaming
chooses between proxy and tunnel and so imports the tunnel; the tunnel never imports streaming.
"""

from __future__ import annotations

from platebridge.portal.settings import PortalSettings
from platebridge.portal.streaming.relay import PodRelay
from platebridge.portal.streaming.relay_pools import relay_client
from platebridge.portal.tunnel.hub import TunnelHub
from platebridge.portal.tunnel.transport import TunnelTransport


def tunnel_relay(hub: TunnelHub, settings: PortalSettings) -> PodRelay:
    """A PodRelay whose httpx client sends every request down the POD's tunnel."""
    client = relay_client(
        settings.stream_connect_timeout,
        settings.stream_read_timeout,
        transport=TunnelTransport(hub),
    )
    return PodRelay(
        client,
        connect_timeout=settings.stream_connect_timeout,
        read_timeout=settings.stream_read_timeout,
    )
