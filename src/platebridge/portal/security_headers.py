"""Security headers on every portal response (pages, API, static files, errors).

The Content-Security-Policy allows scripts, styles, images and media from the portal itself
only (no inline script, no CDN). A page that plays a POD directly (stream mode ``direct``) adds
that POD's origin to ``connect-src``/``media-src`` for its own response only, by putting it in
``request.state.csp_pod_origins`` (see :func:`allow_pod_origins`); ``connect-src`` also gets the
WebSocket form of each (``ws://`` for ``http://``, ``wss://`` for ``https://``) for the live
player. The portal's own live WebSocket needs nothing: ``'self'`` covers ``ws(s)://`` of the
page's own host (CSP Level 3).
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP_STATE_KEY = "csp_pod_origins"


def _websocket_origin(origin: str) -> str | None:
    for http, ws in (("http://", "ws://"), ("https://", "wss://")):
        if origin.startswith(http):
            return ws + origin[len(http) :]
    return None


def build_csp(pod_origins: Iterable[str] = ()) -> str:
    origins = set(pod_origins)
    extra = "".join(f" {origin}" for origin in sorted(origins))
    sockets = {ws for ws in map(_websocket_origin, origins) if ws}
    connect = "".join(f" {origin}" for origin in sorted(origins | sockets))
    return "; ".join(
        (
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            f"media-src 'self' blob:{extra}",
            f"connect-src 'self'{connect}",
            "worker-src 'self' blob:",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


@functools.lru_cache(maxsize=1024)
def _csp_value(pod_origins: frozenset[str]) -> bytes:
    """The header value for a set of POD origins (the same few sets, every response)."""
    return build_csp(pod_origins).encode()


STATIC_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
)


def pod_origin(ip_address: str | None, port: int, scheme: str = "http") -> str | None:
    """``http://10.0.0.5:8000`` / ``http://[fd00::5]:8000`` for a literal IP, else None.

    Only literal IPs are accepted, so nothing a POD reports can inject into the header."""
    if not ip_address:
        return None
    try:
        ip = ipaddress.ip_address(ip_address)
    except ValueError:
        return None
    if not 1 <= port <= 65535 or scheme not in ("http", "https"):
        return None
    host = f"[{ip}]" if ip.version == 6 else str(ip)
    return f"{scheme}://{host}:{port}"


def allow_pod_origins(request: Request, origins: Iterable[str | None]) -> None:
    """Let this response's page connect to (and play media from) these POD origins."""
    current: list[str] = getattr(request.state, CSP_STATE_KEY, [])
    setattr(request.state, CSP_STATE_KEY, [*current, *(o for o in origins if o)])


class SecurityHeaders:
    """ASGI middleware adding the headers above to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                state = scope.get("state") or {}
                origins = state.get(CSP_STATE_KEY, []) if isinstance(state, dict) else []
                present = {name.lower() for name, _ in message.get("headers", [])}
                headers = list(message.get("headers", []))
                for name, value in STATIC_HEADERS:
                    if name not in present:
                        headers.append((name, value))
                if b"content-security-policy" not in present:
                    headers.append((b"content-security-policy", _csp_value(frozenset(origins))))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
