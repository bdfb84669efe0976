"""The one place an httpx client is built, for the portal and the POD agent alike.

Every client here must:

* ignore the environment (``trust_env=False``): ``HTTP(S)_PROXY``/``ALL_PROXY`` must not reroute
  POD or portal traffic (and the pod key or stream token with it) through a proxy, and
  ``~/.netrc`` must not add credentials; ``SSL_CERT_FILE``/``SSL_CERT_DIR`` are ignored too —
  ``verify=True`` checks against certifi's bundle;
* never follow a redirect (``follow_redirects=False``): a redirect is an answer, not a hop;
* have explicit timeouts (there is no default here, and the connect timeout must be finite);
* say who it is: ``User-Agent: platebridge-<component>/<version>``.

``tests/core/test_http_client.py`` checks that no other module under ``src/`` constructs
``httpx.AsyncClient`` or ``httpx.Client``.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping

import httpx

from platebridge import __version__

#: httpx's own defaults, for callers that do not size their pool.
DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=5)


def user_agent(component: str) -> str:
    """``platebridge-<component>/<version>``, e.g. ``platebridge-pod/0.1.0``."""
    return f"platebridge-{component}/{__version__}"


def new_async_client(
    *,
    timeout: httpx.Timeout | float,
    component: str,
    limits: httpx.Limits | None = None,
    verify: ssl.SSLContext | bool = True,
    transport: httpx.AsyncBaseTransport | None = None,
    base_url: str = "",
    headers: Mapping[str, str] | None = None,
) -> httpx.AsyncClient:
    """An :class:`httpx.AsyncClient` with the settings every PlateBridge client must have.

    ``component`` names the caller in the User-Agent; ``headers`` are added to it (a
    ``User-Agent`` among them is refused: the name is the factory's). ``limits`` defaults to
    :data:`DEFAULT_LIMITS`; ``transport`` replaces the network (the tunnel's relay).
    """
    timeouts = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
    if timeouts.connect is None or timeouts.pool is None:
        raise ValueError("an HTTP client needs a finite connect and pool timeout")
    extra = dict(headers or {})
    if any(name.lower() == "user-agent" for name in extra):
        raise ValueError("the User-Agent is set by the factory (pass component=)")
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=timeouts,
        limits=limits if limits is not None else DEFAULT_LIMITS,
        verify=verify,
        transport=transport,
        headers={"User-Agent": user_agent(component), **extra},
        follow_redirects=False,
        trust_env=False,
    )
