"""Prometheus metrics of the portal (``docs/metrics.md``): the process instruments, the
middleware that feeds them, the scrape-time fleet totals and the protected ``/metrics``."""

from __future__ import annotations

from fastapi import FastAPI

from platebridge.portal.metrics.middleware import MetricsMiddleware, note_stream_method
from platebridge.portal.metrics.route import router

__all__ = ["install_metrics", "note_stream_method"]


def install_metrics(app: FastAPI) -> None:
    """The measuring middleware (outermost) and the ``/metrics`` route."""
    app.add_middleware(MetricsMiddleware)
    app.include_router(router)
