"""Sending one webhook notice: the signature, the SSRF check of the target, the POST.

Signature (header ``X-PlateBridge-Signature``): ``t=<unix seconds>,v1=<hex>`` where ``<hex>`` is
HMAC-SHA256 keyed with the endpoint's secret over ``f"{t}.".encode() + body``. A receiver
recomputes it over the raw body, compares in constant time and rejects an old ``t``.

Targets are admin-chosen URLs, so the host is resolved here and *every* resolved address must
pass the SSRF rules of ``streaming/ssrf.py``: public (globally routed) addresses are allowed;
loopback, private, link-local, CGNAT and reserved ones only inside a network listed in
``alert_webhook_networks``; unspecified, multicast, broadcast and the cloud metadata addresses
never. A refusal sends nothing.

DNS rebinding: the request goes to the checked IP itself (the URL's host replaced by the
address), with the original ``Host`` header and, for https, the original name as TLS SNI and
certificate host name (httpcore's ``sni_hostname`` extension), so a second lookup can never
point the connection elsewhere. Environment proxies are ignored (``trust_env=False``) and
redirects are not followed: a 3xx is a failure like any other non-2xx answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import socket
import time
from urllib.parse import urlsplit, urlunsplit

import httpx

from platebridge.core.http_client import new_async_client
from platebridge.portal.alerts.enqueue import webhook_target
from platebridge.portal.settings import PortalSettings
from platebridge.portal.streaming.ssrf import (
    AddressRefused,
    Decision,
    IPNetwork,
    check_pod_address,
    parse_networks,
)

_ANYWHERE: tuple[IPNetwork, ...] = (
    ipaddress.ip_network("0.0.0.0/0"),
    ipaddress.ip_network("::/0"),
)
#: Cloud metadata services: refused whatever the operator allows.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254")
)


class WebhookError(Exception):
    """The notice was not delivered. ``message`` is safe to store and show: it names the target
    as scheme://host[:port] only, never the URL's path or query, the secret or the body."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-PlateBridge-Signature`` header value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def allowed_networks(settings: PortalSettings) -> tuple[IPNetwork, ...]:
    """The operator's extra webhook networks (``alert_webhook_networks``; empty: none)."""
    if not settings.alert_webhook_networks.strip():
        return ()
    return parse_networks(settings.alert_webhook_networks)


def check_webhook_address(address: str, extra: tuple[IPNetwork, ...]) -> Decision:
    """Accept one resolved address as a webhook destination or raise :class:`AddressRefused`."""
    decision = check_pod_address(address, _ANYWHERE + extra)
    for judged in {decision.judged, decision.address}:
        if judged in METADATA_ADDRESSES:
            raise AddressRefused("metadata", f"{judged} is a cloud metadata address")
        listed = any(judged.version == n.version and judged in n for n in extra)
        if not judged.is_global and not listed:
            raise AddressRefused(
                "not_public",
                f"{judged} is not a public address and is not listed in the allowed "
                "webhook networks",
            )
    return decision


async def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (a literal IP: itself)."""
    try:
        ipaddress.ip_address(host)
        return [host]
    except ValueError:
        pass
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    found: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in found:
            found.append(address)
    return found


async def _checked(url: str, settings: PortalSettings) -> tuple[list[str], str, str | None]:
    """(URLs with each checked IP as host, Host header, SNI name) or :class:`WebhookError`."""
    where = webhook_target(url)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookError(f"{where}: not an http(s) URL with a host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise WebhookError(f"{where}: invalid port") from None
    host = parts.hostname
    try:
        addresses = await resolve(host, port)
    except OSError:
        raise WebhookError(f"{where}: the host name does not resolve") from None
    if not addresses:
        raise WebhookError(f"{where}: the host name does not resolve")
    try:
        extra = allowed_networks(settings)
        decisions = [check_webhook_address(a, extra) for a in addresses]
    except AddressRefused as exc:
        raise WebhookError(f"{where}: refused by the SSRF rules ({exc.message})") from None
    except ValueError:
        raise WebhookError("alert_webhook_networks is not a valid list of CIDRs") from None
    targets = [
        urlunsplit((parts.scheme, f"{d.host}:{port}", parts.path or "/", parts.query, ""))
        for d in decisions
    ]
    host_header = f"[{host}]" if ":" in host else host
    if parts.port:
        host_header += f":{parts.port}"
    sni = host if parts.scheme == "https" and not _is_ip(host) else None
    return targets, host_header, sni


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _failure(where: str, exc: httpx.HTTPError) -> WebhookError:
    if isinstance(exc, httpx.TimeoutException):
        return WebhookError(f"{where}: no answer in time ({type(exc).__name__})")
    if isinstance(exc, httpx.ConnectError):
        return WebhookError(f"{where}: could not connect")
    return WebhookError(f"{where}: request failed ({type(exc).__name__})")


async def _post(
    client: httpx.AsyncClient,
    targets: list[str],
    body: bytes,
    headers: dict[str, str],
    extensions: dict[str, str] | None,
) -> int:
    """POST to the checked addresses in turn until one accepts the connection."""
    for n, target in enumerate(targets):
        try:
            async with client.stream(
                "POST", target, content=body, headers=headers, extensions=extensions
            ) as response:
                return response.status_code
        except httpx.ConnectError:
            if n == len(targets) - 1:
                raise
    raise AssertionError("no target")  # _checked never returns an empty list


async def send_webhook(
    url: str,
    secret: str,
    body: bytes,
    delivery_id: str,
    event: str,
    settings: PortalSettings,
) -> int:
    """POST ``body`` to ``url``; returns the 2xx status code, else raises :class:`WebhookError`
    (with ``status_code`` when the receiver answered)."""
    where = webhook_target(url)
    timeout = settings.alert_webhook_timeout
    try:
        async with asyncio.timeout(timeout * 2):
            targets, host_header, sni = await _checked(url, settings)
            headers = {
                "Host": host_header,
                "Content-Type": "application/json",
                "X-PlateBridge-Delivery": delivery_id,
                "X-PlateBridge-Event": event,
                "X-PlateBridge-Signature": sign(secret, int(time.time()), body),
            }
            extensions = {"sni_hostname": sni} if sni else None
            async with new_async_client(timeout=timeout, component="alerts") as client:
                status = await _post(client, targets, body, headers, extensions)
    except TimeoutError:
        raise WebhookError(f"{where}: no answer in time") from None
    except httpx.HTTPError as exc:
        raise _failure(where, exc) from None
    if 200 <= status < 300:
        return status
    kind = "a redirect (not followed)" if 300 <= status < 400 else "an error"
    raise WebhookError(f"{where}: answered {status}, {kind}", status_code=status)
