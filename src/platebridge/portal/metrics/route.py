"""``GET /metrics``: Prometheus text, for a scraper only (``docs/metrics.md``).

Off the public router (not in the OpenAPI document, ``@public`` for the user guard because
it checks its own credentials). Settings decide who may read it:

* neither ``metrics_token`` nor ``metrics_networks`` set: the route does not exist (404,
  the answer of any unknown path) — metrics are off unless an operator turns them on;
* ``metrics_networks`` set: the client address (``trusted_proxies`` honoured) must lie in
  one of the networks, else 403;
* ``metrics_token`` set: ``Authorization: Bearer <token>`` must match, else 401.

Both set: both must hold.
"""

from __future__ import annotations

import hmac
import ipaddress

from fastapi import APIRouter, Request
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from platebridge.portal.credentials import bearer_token, client_ip
from platebridge.portal.db import Database
from platebridge.portal.errors import ApiError
from platebridge.portal.markers import public
from platebridge.portal.metrics.collect import scrape
from platebridge.portal.settings import PortalSettings

METRICS_PATH = "/metrics"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

router = APIRouter(include_in_schema=False)


def check_scraper(request: Request, settings: PortalSettings) -> None:
    """Raise unless the request may read the metrics (module doc)."""
    networks = settings.metrics_network_list
    secret = settings.metrics_token
    if secret is None and not networks:
        raise StarletteHTTPException(404)
    if networks:
        address = client_ip(request)
        try:
            ip = ipaddress.ip_address(address or "")
        except ValueError:
            ip = None
        if ip is None or not any(ip in net for net in networks):
            raise ApiError(403, "forbidden", "metrics are not served to this address")
    if secret is not None:
        given = bearer_token(request) or ""
        if not hmac.compare_digest(given.encode(), secret.get_secret_value().encode()):
            raise ApiError(
                401,
                "unauthorized",
                "a valid metrics token is required",
                headers={"WWW-Authenticate": "Bearer"},
            )


@router.get(METRICS_PATH)
@public
async def metrics(request: Request) -> Response:
    settings: PortalSettings = request.app.state.settings
    check_scraper(request, settings)
    db: Database = request.app.state.db
    text = await scrape(db, settings.offline_after)
    return Response(text, media_type=CONTENT_TYPE, headers={"Cache-Control": "no-store"})
