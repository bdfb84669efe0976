"""Method 4 — the outbound tunnel: PODs dial out, the portal sends requests down the line.

``create_hub`` (lifespan), ``install_tunnel`` (app factory), ``tunnel_relay`` (a
:class:`~platebridge.portal.streaming.relay.PodRelay` whose client goes through the tunnels). See
``docs/tunnel.md``.
"""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from platebridge.portal.settings import PortalSettings
from platebridge.portal.streaming.relay import PodRelay
from platebridge.portal.tunnel.hub import TunnelHub
from platebridge.portal.tunnel.routes import get_hub, tunnel_routes
from platebridge.portal.tunnel.transport import TunnelTransport, tunnel_base_url

__all__ = [
    "TunnelHub",
    "create_hub",
    "get_hub",
    "install_tunnel",
    "tunnel_base_url",
    "tunnel_relay",
]


def create_hub(settings: PortalSettings) -> TunnelHub:
    redis_url = settings.redis_url.get_secret_value() if settings.redis_url else None
    return TunnelHub.create(
        redis_url=redis_url or None,
        node_url=settings.node_url or None,
        ttl=settings.tunnel_registry_ttl,
        window=settings.tunnel_window,
        max_streams=settings.tunnel_max_streams,
        forward_timeout=settings.stream_connect_timeout,
    )


def tunnel_relay(hub: TunnelHub, settings: PortalSettings) -> PodRelay:
    """The relay for tunnelled pods: PodRelay's deadlines and errors, the tunnel as transport."""
    client = httpx.AsyncClient(
        transport=TunnelTransport(hub),
        timeout=httpx.Timeout(
            connect=settings.stream_connect_timeout,
            read=settings.stream_read_timeout,
            write=settings.stream_read_timeout,
            pool=settings.stream_connect_timeout,
        ),
        follow_redirects=False,
        trust_env=False,
        headers={"User-Agent": "platebridge-portal-relay", "Accept-Encoding": "identity"},
    )
    return PodRelay(
        client,
        connect_timeout=settings.stream_connect_timeout,
        read_timeout=settings.stream_read_timeout,
    )


def install_tunnel(app: FastAPI) -> None:
    """Mount ``WS /api/pod/tunnel`` and the internal forwarding endpoints (first, so no
    catch-all route can shadow them)."""
    for route in reversed(tunnel_routes()):
        app.router.routes.insert(0, route)
