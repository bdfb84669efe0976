"""SSRF guard: decide whether the portal may connect to the address a POD reported.

A POD reports its own ``ip_address`` in the heartbeat, so whoever holds a pod key can point the
portal's stream proxy anywhere. The proxy therefore only ever connects to an address that passed
:func:`check_pod_address`:

* only a literal IP in canonical form (``str(ipaddress.ip_address(x)) == x``): hostnames are never
  resolved, and the decimal, hex, octal and short forms of IPv4, brackets, zone ids and
  whitespace are all refused;
* IPv4-mapped IPv6 (``::ffff:a9fe:a9fe``) is the IPv4 address on the wire and is judged (and
  connected to) as that IPv4 address; addresses that embed an IPv4 address for a translator or
  tunnel (IPv4-compatible ``::a.b.c.d``, SIIT ``::ffff:0:a.b.c.d``, NAT64 ``64:ff9b::/96`` and
  ``64:ff9b:1::/48``, 6to4 ``2002::/16``, Teredo ``2001::/32``) pass only when *both* the embedded
  IPv4 address and the IPv6 address itself pass;
* unspecified, multicast and broadcast addresses are never accepted; loopback, link-local
  (169.254/16 is the cloud metadata service), site-local and reserved addresses only when an
  allowed network that lies *inside* that special range is listed explicitly (``127.0.0.0/8``
  allows 127.0.0.1, ``0.0.0.0/0`` does not);
* everything else must lie inside one of the allowed networks.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

#: Defined once with the other settings defaults; re-exported here for the SSRF checks.
from platebridge.portal.settings import DEFAULT_POD_NETWORKS as DEFAULT_POD_NETWORKS

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
NetworkKind = Literal["lan", "vpn", "public"]

#: Longest address text looked at (a full IPv6 address with an embedded IPv4 part is 45).
MAX_ADDRESS_LENGTH = 64
MAX_NETWORKS_TEXT = 4096

_N = ipaddress.ip_network

#: Tailscale's CGNAT range and its IPv6 ULA range: shown as "vpn".
VPN_NETWORKS: tuple[IPNetwork, ...] = (_N("100.64.0.0/10"), _N("fd7a:115c:a1e0::/48"))

#: Never a destination, whatever is allowed.
_ALWAYS_REFUSED: tuple[tuple[str, IPNetwork], ...] = (
    ("unspecified", _N("0.0.0.0/8")),
    ("unspecified", _N("::/128")),
    ("multicast", _N("224.0.0.0/4")),
    ("multicast", _N("ff00::/8")),
    ("broadcast", _N("255.255.255.255/32")),
)

#: Refused unless an allowed network inside the range is listed explicitly.
_SPECIAL: tuple[tuple[str, IPNetwork], ...] = (
    ("loopback", _N("127.0.0.0/8")),
    ("loopback", _N("::1/128")),
    ("link_local", _N("169.254.0.0/16")),
    ("link_local", _N("fe80::/10")),
    ("reserved", _N("240.0.0.0/4")),
    ("reserved", _N("fec0::/10")),  # deprecated site-local
    ("reserved", _N("100::/64")),  # discard-only
)

_SIIT = _N("::ffff:0:0:0/96")
_NAT64_WKP = _N("64:ff9b::/96")
_NAT64_LOCAL = _N("64:ff9b:1::/48")
_V4_COMPATIBLE = _N("::/96")


class AddressRefused(ValueError):
    """The address must not be connected to. ``reason`` is a short machine-readable code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True, slots=True)
class Decision:
    """An accepted POD address.

    ``address`` is what to connect to; ``judged`` the address the decision was made on (the
    embedded IPv4 address for mapped/translated forms, else ``address``); ``network`` the allowed
    network ``judged`` lies in; ``kind`` how the pod is reached.
    """

    address: IPAddress
    judged: IPAddress
    network: IPNetwork
    kind: NetworkKind

    @property
    def host(self) -> str:
        """The address as a URL host: ``10.0.0.5`` or ``[fd7a:115c:a1e0::5]``."""
        if self.address.version == 6:
            return f"[{self.address}]"
        return str(self.address)


def _shown(text: str) -> str:
    """The offending text, bounded and with control characters escaped, for messages."""
    return ascii(text[:MAX_ADDRESS_LENGTH])


def parse_networks(text: str) -> tuple[IPNetwork, ...]:
    """Parse comma-separated CIDRs (``10.0.0.0/8,fd7a:115c:a1e0::/48``).

    Empty entries (a trailing comma) are skipped, duplicates dropped. Raises :class:`ValueError`
    naming the first bad entry, or when no network is given at all.
    """
    if not isinstance(text, str):
        raise ValueError("networks must be a comma-separated string of CIDRs")
    if len(text) > MAX_NETWORKS_TEXT:
        raise ValueError(f"networks list is longer than {MAX_NETWORKS_TEXT} characters")
    result: list[IPNetwork] = []
    for raw in text.split(","):
        entry = raw.strip()
        if not entry:
            continue
        if "%" in entry:
            raise ValueError(f"invalid network {_shown(entry)}: zone ids are not allowed")
        try:
            network = ipaddress.ip_network(entry, strict=True)
        except ValueError as exc:
            raise ValueError(f"invalid network {_shown(entry)}: {exc}") from None
        if network not in result:
            result.append(network)
    if not result:
        raise ValueError("no network given (expected comma-separated CIDRs such as 10.0.0.0/8)")
    return tuple(result)


def _parse_literal(address: object) -> IPAddress:
    if not isinstance(address, str):
        raise AddressRefused("malformed", "the address must be a string")
    if not address:
        raise AddressRefused("malformed", "the address is empty")
    if len(address) > MAX_ADDRESS_LENGTH:
        raise AddressRefused("malformed", "the address is too long")
    if "%" in address:
        raise AddressRefused("zone_id", f"{_shown(address)} carries a zone id")
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        raise AddressRefused(
            "not_literal_ip",
            f"{_shown(address)} is not a literal IP address (hostnames are never resolved)",
        ) from None
    if str(parsed) != address:
        raise AddressRefused(
            "not_canonical",
            f"{_shown(address)} is not in canonical form (expected {parsed})",
        )
    return parsed


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address a translator or tunnel would reach for ``address``, if any."""
    value = int(address)
    if address in _SIIT or address in _NAT64_WKP:
        return ipaddress.IPv4Address(value & 0xFFFFFFFF)
    if address in _NAT64_LOCAL:
        # RFC 6052 /48 layout: IPv4 bits 0-15 at bits 48-63, bits 16-31 at bits 72-87.
        high = (value >> 64) & 0xFFFF
        low = (value >> 40) & 0xFFFF
        return ipaddress.IPv4Address((high << 16) | low)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _V4_COMPATIBLE and value > 1:
        return ipaddress.IPv4Address(value & 0xFFFFFFFF)
    return None


def _inside(inner: IPNetwork, outer: IPNetwork) -> bool:
    if isinstance(inner, ipaddress.IPv4Network) and isinstance(outer, ipaddress.IPv4Network):
        return inner.subnet_of(outer)
    if isinstance(inner, ipaddress.IPv6Network) and isinstance(outer, ipaddress.IPv6Network):
        return inner.subnet_of(outer)
    return False


def _judge(address: IPAddress, allowed: Iterable[IPNetwork]) -> IPNetwork:
    """Return the allowed network ``address`` lies in, or raise :class:`AddressRefused`."""
    for reason, special in _ALWAYS_REFUSED:
        if address.version == special.version and address in special:
            raise AddressRefused(reason, f"{address} is a {reason} address")
    containing = [net for net in allowed if net.version == address.version and address in net]
    for reason, special in _SPECIAL:
        if address.version == special.version and address in special:
            containing = [net for net in containing if _inside(net, special)]
            if not containing:
                raise AddressRefused(
                    reason,
                    f"{address} is a {reason.replace('_', '-')} address and {special} is not "
                    "listed in the allowed POD networks",
                )
            break
    if not containing:
        raise AddressRefused("not_allowed", f"{address} is outside the allowed POD networks")
    return max(containing, key=lambda net: net.prefixlen)


def network_kind(address: str | IPAddress) -> NetworkKind:
    """How a pod on ``address`` is reached: Tailscale ``vpn``, private ``lan`` or ``public``.

    IPv4-mapped and translated IPv6 addresses are classified by their embedded IPv4 address.
    Raises :class:`AddressRefused` when ``address`` is not a literal IP.
    """
    if isinstance(address, str):
        try:
            parsed: IPAddress = ipaddress.ip_address(address)
        except ValueError:
            raise AddressRefused(
                "not_literal_ip", f"{_shown(address)} is not a literal IP address"
            ) from None
    else:
        parsed = address
    if isinstance(parsed, ipaddress.IPv6Address):
        inner = parsed.ipv4_mapped or _embedded_ipv4(parsed)
        if inner is not None:
            parsed = inner
    if any(parsed.version == net.version and parsed in net for net in VPN_NETWORKS):
        return "vpn"
    if parsed.is_private:
        return "lan"
    return "public"


def check_pod_address(address: str, allowed: Iterable[IPNetwork]) -> Decision:
    """Accept ``address`` as a POD address or raise :class:`AddressRefused` (never resolves)."""
    networks = tuple(allowed)
    parsed = _parse_literal(address)
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        # On a dual-stack socket this *is* the IPv4 address: judge and connect to that.
        inner4 = parsed.ipv4_mapped
        network = _judge(inner4, networks)
        return Decision(address=inner4, judged=inner4, network=network, kind=network_kind(inner4))
    if isinstance(parsed, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(parsed)
        if embedded is not None:
            network = _judge(embedded, networks)
            _judge(parsed, networks)
            return Decision(
                address=parsed, judged=embedded, network=network, kind=network_kind(embedded)
            )
    network = _judge(parsed, networks)
    return Decision(address=parsed, judged=parsed, network=network, kind=network_kind(parsed))


def pod_base_url(
    address: str, port: int, allowed: Iterable[IPNetwork], scheme: str = "http"
) -> str:
    """``http://10.0.0.5:8000`` / ``http://[fd7a:115c:a1e0::5]:8000``, only for an accepted address.

    Raises :class:`AddressRefused` for a refused address and :class:`ValueError` for a bad port
    or scheme.
    """
    if scheme not in ("http", "https"):
        raise ValueError("scheme must be 'http' or 'https'")
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ValueError("port must be an integer between 1 and 65535")
    decision = check_pod_address(address, allowed)
    return f"{scheme}://{decision.host}:{port}"
