"""The portal's process metrics (``prometheus_client``), defined once per Python process.

They register in :data:`REGISTRY` (not the library's global one). With
``PROMETHEUS_MULTIPROC_DIR`` set in the environment before the portal starts, the library
keeps every value in that directory's files instead of memory and a scrape of any process
reads all of them (``docs/metrics.md``, "Several processes"); the gauges then say how the
processes' values combine (``livesum``: the sum over the processes still running).

Labels are bounded: route templates, HTTP methods, status classes, stream methods, outcomes —
never a user, a token, a pod, a camera or an address.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)

#: Set: every process writes its values to this directory (prometheus_client multiprocess).
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
PREFIX = "platebridge_portal_"
#: Seconds: a request of the portal's own is ms; relayed media and exports take seconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)

# No ``*_created`` series: they double the exposition (and its render time) for a timestamp
# Prometheus does not need; the portal has no other prometheus_client metrics to keep them.
disable_created_metrics()  # type: ignore[no-untyped-call]

REGISTRY = CollectorRegistry(auto_describe=True)


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


HEARTBEATS = Counter(
    PREFIX + "heartbeats",
    "POD heartbeats answered, by outcome (ok, unauthorized, invalid, throttled, error).",
    ["outcome"],
    registry=REGISTRY,
)
REQUEST_SECONDS = Histogram(
    PREFIX + "request_duration_seconds",
    "HTTP request duration until the response ended, by method and route template "
    "(unmatched: no route).",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
REQUESTS = Counter(
    PREFIX + "requests",
    "HTTP requests answered, by method, route template and status class (2xx, 4xx, ...).",
    ["method", "route", "status"],
    registry=REGISTRY,
)
STREAM_BYTES = Counter(
    PREFIX + "stream_bytes",
    "Bytes of video and playlists sent to viewers through the portal, by how the portal "
    "reached the POD (proxy, tunnel) and transport (hls: HTTP responses, live: WebSocket).",
    ["method", "transport"],
    registry=REGISTRY,
)
ACTIVE_VIEWERS = Gauge(
    PREFIX + "active_viewers",
    "Viewers watching through the portal, by method (proxy, tunnel) and transport (live: open "
    "WebSockets; hls: players that fetched a playlist in the last 60 s).",
    ["method", "transport"],
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
TUNNEL_CONNECTIONS = Gauge(
    PREFIX + "tunnel_connections",
    "POD tunnels (WebSocket /api/pod/tunnel) open at the portal.",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
TUNNEL_BYTES = Counter(
    PREFIX + "tunnel_bytes",
    "Bytes over the POD tunnels' WebSockets, by direction (in: from PODs, out: to PODs).",
    ["direction"],
    registry=REGISTRY,
)
DB_CONNECTIONS_IN_USE = Gauge(
    PREFIX + "db_pool_connections_in_use",
    "Database connections checked out of the pool now.",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
DB_CHECKOUTS = Counter(
    PREFIX + "db_pool_checkouts",
    "Database connections checked out of the pool.",
    registry=REGISTRY,
)
