"""Method 4 — the outbound tunnel: PODs dial out, the portal sends requests down the line.

``create_hub`` (lifespan), ``install_tunnel`` (app factory), ``TunnelTransport`` (the httpx
transport ``streaming`` builds its tunnel relay on; tunnel never imports streaming). See
``docs/tunnel.md``.
"""

from __future__ import annotations

from fastapi import FastAPI

from platebridge.portal.settings import PortalSettings
from platebridge.portal.tunnel.hub import TunnelHub
from platebridge.portal.tunnel.routes import get_hub, tunnel_routes
from platebridge.portal.tunnel.transport import TunnelTransport, tunnel_base_url

__all__ = [
    "TunnelHub",
    "TunnelTransport",
    "create_hub",
    "get_hub",
    "install_tunnel",
    "tunnel_base_url",
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


def install_tunnel(app: FastAPI) -> None:
    """Mount ``WS /api/pod/tunnel`` and the internal forwarding endpoints (first, so no
    catch-all route can shadow them)."""
    for route in reversed(tunnel_routes()):
        app.router.routes.insert(0, route)
