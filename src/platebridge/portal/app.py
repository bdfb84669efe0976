"""The portal's FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from platebridge.core.errors import ErrorBody
from platebridge.portal.alerts.background import AlertLoops
from platebridge.portal.db import Database
from platebridge.portal.deps import require_user
from platebridge.portal.errors import install_error_handlers
from platebridge.portal.exact_routes import install_exact_routes
from platebridge.portal.limits import ContentLengthLimit
from platebridge.portal.metrics import install_metrics
from platebridge.portal.pages import install_pages
from platebridge.portal.routes import (
    auth,
    camera_admin,
    cameras,
    enroll,
    health,
    heartbeat,
    openapi,
    pod_admin,
    pods,
    tenancy,
    users,
)
from platebridge.portal.routes.footage import install_footage
from platebridge.portal.routes.shares import install_shares
from platebridge.portal.routes.streaming import install_streaming
from platebridge.portal.security_headers import SecurityHeaders
from platebridge.portal.services.heartbeat_body import SeenBodies
from platebridge.portal.services.portal_secret import ensure_secret_key
from platebridge.portal.settings import PortalSettings
from platebridge.portal.streaming.state import StreamingState
from platebridge.portal.tunnel import create_hub, install_tunnel


def create_app(settings: PortalSettings | None = None) -> FastAPI:
    """Build the app. The schema must be migrated already (``serve`` and ``migrate`` do it)."""
    settings = settings or PortalSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = Database(settings.database_url)
        app.state.db = db
        app.state.tunnel_hub = hub = create_hub(settings)
        app.state.streaming = StreamingState.create(settings, hub)  # complete, relays included
        try:
            configured = settings.secret_key.get_secret_value() if settings.secret_key else None
            async with db.write() as session:
                app.state.secret_key = await ensure_secret_key(session, configured)
            await hub.start(app.state.secret_key)
            if settings.alerts_enabled:  # evaluation pass + delivery worker (docs/alerts.md)
                app.state.alerts = AlertLoops(db, settings, hub.registry.holders, hub.node_id)
                app.state.alerts.start()
            yield
        finally:
            if getattr(app.state, "alerts", None) is not None:
                await app.state.alerts.aclose()
            await hub.aclose()
            await app.state.streaming.aclose()
            await db.dispose()

    app = FastAPI(
        title="PlateBridge portal",
        lifespan=lifespan,
        # Secure by default: every route requires a user unless marked @public.
        dependencies=[Depends(require_user)],
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        # Every refusal is the one error body (core.errors); the OpenAPI document says so.
        responses={"4XX": {"model": ErrorBody}, "5XX": {"model": ErrorBody}},
    )
    app.state.settings = settings
    app.state.seen_heartbeats = SeenBodies()  # routes/heartbeat.py: bodies validated before
    app.add_middleware(ContentLengthLimit)
    app.add_middleware(SecurityHeaders)  # outermost: every response, errors included
    install_error_handlers(app)
    # The POD's hot routes skip the router's matching (inside every middleware above)
    install_exact_routes(app, heartbeat.router, enroll.router, route_class=heartbeat.PlainRoute)
    for module in (health, auth, heartbeat, enroll, cameras, pods, users, openapi):
        app.include_router(module.router)
    for module in (tenancy, pod_admin, camera_admin):  # lifecycle of objects (issue 15)
        app.include_router(module.router)
    install_streaming(app)  # stream tokens, proxy, audit
    install_footage(app)  # footage tokens and the recorded-video relay (issue 13)
    install_shares(app)  # share links: /api/shares and the public /s/{secret}
    install_tunnel(app)  # WS /api/pod/tunnel + internal forwarding between portal processes
    install_metrics(app)  # GET /metrics (protected, off the OpenAPI) + its middleware
    install_pages(app)  # HTML pages, static files, page error handling
    return app
