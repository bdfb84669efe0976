"""The relay's connection pools: who connects to PODs, with which limits and keep-alive.

Two clients, built once per process in the app lifespan (:meth:`PodRelay.create
<platebridge.portal.streaming.relay.PodRelay.create>`): the lean
:class:`~platebridge.portal.streaming.upstream_http.UpstreamPool` for plain ``http://`` POD
URLs, and one pooled :class:`httpx.AsyncClient` (from
:func:`platebridge.core.http_client.new_async_client`) for everything else and for the
tunnel's relay. Keep-alive connections are reused across segments and viewers; redirects are
never followed and proxy settings from the environment are ignored; httpx's request log lines
have the ``?token=…`` masked.
"""

from __future__ import annotations

import logging

import httpx

from platebridge.core.http_client import new_async_client, user_agent
from platebridge.core.redact import redact_text
from platebridge.portal.streaming.upstream_body import READ_SIZE
from platebridge.portal.streaming.upstream_http import UpstreamPool

#: Plain-HTTP PODs (the lean client): hand on whatever the socket delivered, up to this much.
LEAN_CHUNK_SIZE = READ_SIZE
DEFAULT_KEEPALIVE_EXPIRY = 4.0
#: ``User-Agent: platebridge-portal-relay/<version>`` (httpx client and lean client alike).
RELAY_COMPONENT = "portal-relay"


class _RedactHttpxLog(logging.Filter):
    """httpx logs every request URL at INFO: mask the ``?token=…`` in it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken record is not ours to fix
            return True
        record.msg = redact_text(message)
        record.args = None
        return True


def install_httpx_log_redaction() -> None:
    for name in ("httpx", "httpcore"):
        target = logging.getLogger(name)
        if not any(isinstance(f, _RedactHttpxLog) for f in target.filters):
            target.addFilter(_RedactHttpxLog())


def relay_client(
    connect_timeout: float,
    read_timeout: float,
    *,
    limits: httpx.Limits | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """The relay's httpx client: the relay's deadlines, ``Accept-Encoding: identity`` (bodies
    are relayed as the POD sent them), and the settings of :func:`new_async_client`."""
    return new_async_client(
        timeout=httpx.Timeout(
            connect=connect_timeout, read=read_timeout, write=read_timeout, pool=connect_timeout
        ),
        component=RELAY_COMPONENT,
        limits=limits,
        transport=transport,
        headers={"Accept-Encoding": "identity"},
    )


def relay_pools(
    connect_timeout: float,
    read_timeout: float,
    max_connections: int,
    *,
    max_keepalive_connections: int | None,
    keepalive_expiry: float,
) -> tuple[httpx.AsyncClient, UpstreamPool]:
    """The httpx client and the lean pool of one relay, each with at most ``max_connections``
    connections (``max_keepalive_connections`` of them kept alive: default all)."""
    install_httpx_log_redaction()
    client = relay_client(
        connect_timeout,
        read_timeout,
        limits=httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=(
                max_connections if max_keepalive_connections is None else max_keepalive_connections
            ),
            keepalive_expiry=keepalive_expiry,
        ),
    )
    pool = UpstreamPool(
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        max_connections=max_connections,
        keepalive_expiry=keepalive_expiry,
        user_agent=user_agent(RELAY_COMPONENT),
    )
    return client, pool
