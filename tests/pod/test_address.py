"""advertise_address: literal, auto (default route source IP) and tailscale selection."""

from __future__ import annotations

from platebridge.pod.address import (
    default_route_ip,
    interface_ipv4_addresses,
    pick_tailscale,
    resolve_advertise_address,
)


def test_literal_is_returned_as_is() -> None:
    assert resolve_advertise_address("192.168.1.100") == "192.168.1.100"


def test_default_route_ip_towards_loopback() -> None:
    # the target is loopback so the test never depends on a real network route
    assert default_route_ip(("127.0.0.1", 9)) == "127.0.0.1"


def test_interfaces_include_loopback() -> None:
    assert ("lo", "127.0.0.1") in interface_ipv4_addresses()


def test_pick_tailscale_prefers_tailscale_interface_in_cgnat_range() -> None:
    addrs = [
        ("lo", "127.0.0.1"),
        ("eth0", "192.168.1.100"),
        ("wg0", "100.70.0.9"),
        ("tailscale0", "100.101.102.103"),
    ]
    assert pick_tailscale(addrs) == "100.101.102.103"


def test_pick_tailscale_accepts_cgnat_address_on_other_interface() -> None:
    assert pick_tailscale([("eth0", "10.0.0.2"), ("utun3", "100.64.1.5")]) == "100.64.1.5"


def test_pick_tailscale_none_outside_100_64_slash_10() -> None:
    # 100.128.0.1 is outside 100.64.0.0/10; garbage is ignored
    assert (
        pick_tailscale([("tailscale0", "100.128.0.1"), ("x", "nope"), ("eth0", "10.1.1.1")]) is None
    )
