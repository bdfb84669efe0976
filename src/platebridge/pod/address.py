"""Which IP the POD tells the portal to reach it on (``advertise_address``)."""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import socket
import struct
from collections.abc import Iterable

TAILSCALE_NETWORK = ipaddress.ip_network("100.64.0.0/10")
_SIOCGIFADDR = 0x8915
# A public address to "connect" a UDP socket to: connect() on UDP sends no packet, it only asks
# the kernel which source address its routing table would use.
_PROBE_TARGET = ("192.0.2.1", 9)  # TEST-NET-1, never routed on the Internet


def default_route_ip(target: tuple[str, int] = _PROBE_TARGET) -> str | None:
    """Source IP of the route towards ``target`` (the default route), without sending a packet."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(target)
            ip = str(s.getsockname()[0])
    except OSError:
        return None
    return None if ip == "0.0.0.0" else ip


def interface_ipv4_addresses() -> list[tuple[str, str]]:
    """``(interface, ipv4)`` for every local interface that has an IPv4 address (Linux)."""
    found: list[tuple[str, str]] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _, name in socket.if_nameindex():
            with contextlib.suppress(OSError):
                raw = fcntl.ioctl(s.fileno(), _SIOCGIFADDR, struct.pack("256s", name[:15].encode()))
                found.append((name, socket.inet_ntoa(raw[20:24])))
    return found


def pick_tailscale(addresses: Iterable[tuple[str, str]]) -> str | None:
    """The Tailscale (CGNAT 100.64.0.0/10) address, preferring interfaces named ``tailscale*``."""
    candidates: list[tuple[bool, str]] = []
    for name, ip in addresses:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            continue
        if addr in TAILSCALE_NETWORK:
            candidates.append((not name.startswith("tailscale"), ip))
    return min(candidates)[1] if candidates else None


def resolve_advertise_address(setting: str) -> str | None:
    """Turn the config value into an IP, or None when it cannot be determined right now."""
    if setting == "auto":
        return default_route_ip()
    if setting == "tailscale":
        return pick_tailscale(interface_ipv4_addresses())
    return setting
