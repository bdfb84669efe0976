"""Server-rendered pages: sign-in, cameras, live view, grid, PODs, audit.

Jinja templates in ``portal/templates``, static CSS/JS in ``portal/static`` (no inline script:
the CSP forbids it). Routes stay thin; data comes from ``services`` and ``scoping``.
"""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles


def install_pages(app: FastAPI) -> None:
    """Page routers, ``/static`` (public, no session needed) and the page error handlers."""
    from platebridge.portal.pages import (
        admin,
        alerts,
        assets,
        audit,
        errors,
        footage,
        lifecycle,
        routes,
        share,
        users,
    )
    from platebridge.portal.routes.alerts import install_alerts

    app.include_router(assets.router)  # before the mount: /static/vendor/hls.min.js
    app.include_router(routes.router)
    app.include_router(admin.router)
    app.include_router(audit.router)
    app.include_router(users.router)
    app.include_router(lifecycle.router)  # communities, sites, a POD's cameras
    app.include_router(footage.router)  # a camera's recordings
    app.include_router(share.router)  # the public page of a share link
    app.include_router(alerts.router)  # alert history and settings (issue 14)
    # The alerts JSON API (issue 14), installed with its pages until app.create_app lists it.
    install_alerts(app)
    static = resources.files("platebridge.portal") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    errors.install_page_handlers(app)
