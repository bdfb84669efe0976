"""SSRF guard: only literal, canonical IPs inside the allowed POD networks pass."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from platebridge.portal.streaming.ssrf import (
    DEFAULT_POD_NETWORKS,
    AddressRefused,
    check_pod_address,
    network_kind,
    parse_networks,
    pod_base_url,
)

DEFAULT = parse_networks(DEFAULT_POD_NETWORKS)
WITH_LOOPBACK = parse_networks(DEFAULT_POD_NETWORKS + ",127.0.0.0/8")

# Every spelling of the cloud metadata address and of loopback that some parser accepts.
METADATA_FORMS = [
    "169.254.169.254",
    "2852039166",  # decimal
    "0xa9fea9fe",  # hex
    "0xA9FEA9FE",
    "0251.0376.0251.0376",  # octal
    "0xa9.0xfe.0xa9.0xfe",
    "169.254.43518",  # short forms
    "169.16689662",
    "0251.254.169.254",
    "169.254.169.254.",
    "::ffff:169.254.169.254",  # mapped, non-canonical spelling
    "::ffff:a9fe:a9fe",  # mapped, canonical
    "0:0:0:0:0:ffff:a9fe:a9fe",
    "::a9fe:a9fe",  # IPv4-compatible
    "::ffff:0:a9fe:a9fe",  # SIIT
    "64:ff9b::a9fe:a9fe",  # NAT64
    "2002:a9fe:a9fe::1",  # 6to4
    "[169.254.169.254]",
    " 169.254.169.254",
    "169.254.169.254\n",
    "169.254.169.254:80",
    "http://169.254.169.254/",
    "fe80::a9fe:a9fe",  # IPv6 link-local
    "fe80::1%eth0",
    "metadata.google.internal",
    "instance-data",
]
LOOPBACK_FORMS = [
    "127.0.0.1",
    "127.1",
    "127.0.1",
    "2130706433",
    "0x7f000001",
    "0x7f.0.0.1",
    "0177.0.0.1",
    "017700000001",
    "::1",
    "0:0:0:0:0:0:0:1",
    "[::1]",
    "::ffff:127.0.0.1",
    "::ffff:7f00:1",
    "::7f00:1",
    "64:ff9b::7f00:1",
    "localhost",
    "localhost.",
    "LOCALHOST",
]
OTHER_REFUSED = [
    ("0.0.0.0", "unspecified"),
    ("0", "not_literal_ip"),
    ("::", "unspecified"),
    ("::ffff:0.0.0.0", "not_canonical"),
    ("::ffff:0:0", "unspecified"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("ff02::1", "multicast"),
    ("255.255.255.255", "broadcast"),
    ("240.0.0.1", "reserved"),
    ("8.8.8.8", "not_allowed"),  # public: a string to judge, never connected to
    ("1.1.1.1", "not_allowed"),
    ("2001:4860:4860::8888", "not_allowed"),
    ("192.0.2.1", "not_allowed"),  # documentation range, private but not allowed
    ("fd00::1", "not_allowed"),  # a ULA that is not Tailscale's
    ("FD7A:115C:A1E0::1", "not_canonical"),
    ("fd7a:115c:a1e0:0:0:0:0:1", "not_canonical"),
    ("10.0.0.01", "not_literal_ip"),
    ("010.0.0.1", "not_literal_ip"),
    ("10.0.0.1/8", "not_literal_ip"),
    ("", "malformed"),
    ("1" * 100, "malformed"),
    ("10.0.0.1\x00", "not_literal_ip"),
    ("\uff11\uff10.0.0.1", "not_literal_ip"),  # fullwidth digits
    ("2001:0::a9fe:a9fe", "not_canonical"),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "not_allowed"),  # Teredo
]
ACCEPTED = [
    ("10.0.0.5", "10.0.0.5", "lan", "10.0.0.0/8"),
    ("172.16.3.4", "172.16.3.4", "lan", "172.16.0.0/12"),
    ("172.31.255.254", "172.31.255.254", "lan", "172.16.0.0/12"),
    ("192.168.1.100", "192.168.1.100", "lan", "192.168.0.0/16"),
    ("100.64.1.5", "100.64.1.5", "vpn", "100.64.0.0/10"),
    ("100.127.255.1", "100.127.255.1", "vpn", "100.64.0.0/10"),
    ("fd7a:115c:a1e0::5", "fd7a:115c:a1e0::5", "vpn", "fd7a:115c:a1e0::/48"),
    ("::ffff:c0a8:164", "192.168.1.100", "lan", "192.168.0.0/16"),  # mapped → the IPv4 address
]


@pytest.mark.parametrize("address", METADATA_FORMS)
def test_every_form_of_the_metadata_address_is_refused(address: str) -> None:
    for allowed in (DEFAULT, WITH_LOOPBACK, parse_networks("0.0.0.0/0,::/0")):
        with pytest.raises(AddressRefused):
            check_pod_address(address, allowed)


@pytest.mark.parametrize("address", LOOPBACK_FORMS)
def test_every_form_of_loopback_is_refused_by_default(address: str) -> None:
    with pytest.raises(AddressRefused):
        check_pod_address(address, DEFAULT)
    with pytest.raises(AddressRefused):
        check_pod_address(address, parse_networks("0.0.0.0/0,::/0"))


@pytest.mark.parametrize(("address", "reason"), OTHER_REFUSED)
def test_refused_with_reason(address: str, reason: str) -> None:
    with pytest.raises(AddressRefused) as info:
        check_pod_address(address, DEFAULT)
    assert info.value.reason == reason
    assert len(str(info.value)) < 300


@pytest.mark.parametrize(("address", "connect", "kind", "network"), ACCEPTED)
def test_allowed_private_and_vpn_addresses(
    address: str, connect: str, kind: str, network: str
) -> None:
    decision = check_pod_address(address, DEFAULT)
    assert str(decision.address) == connect
    assert decision.kind == kind
    assert str(decision.network) == network
    assert network_kind(address) == kind


def test_loopback_passes_only_when_listed_explicitly() -> None:
    decision = check_pod_address("127.0.0.1", WITH_LOOPBACK)
    assert str(decision.network) == "127.0.0.0/8"
    assert decision.kind == "lan"
    # mapped loopback is the same IPv4 address on the wire
    assert str(check_pod_address("::ffff:7f00:1", WITH_LOOPBACK).address) == "127.0.0.1"
    # non-canonical spellings still never pass
    for form in ("127.1", "2130706433", "0x7f000001", "::ffff:127.0.0.1"):
        with pytest.raises(AddressRefused):
            check_pod_address(form, WITH_LOOPBACK)
    # a narrower listing allows exactly that
    narrow = parse_networks("127.0.0.1/32")
    assert str(check_pod_address("127.0.0.1", narrow).address) == "127.0.0.1"
    with pytest.raises(AddressRefused, match="loopback"):
        check_pod_address("127.0.0.2", narrow)
    # ::1 needs ::1/128 itself
    with pytest.raises(AddressRefused):
        check_pod_address("::1", WITH_LOOPBACK)
    assert str(check_pod_address("::1", parse_networks("::1/128")).address) == "::1"


def test_broad_networks_do_not_include_special_ranges() -> None:
    everything = parse_networks("0.0.0.0/0,::/0")
    assert check_pod_address("8.8.8.8", everything).kind == "public"
    for address, reason in [
        ("169.254.169.254", "link_local"),
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("fe80::1", "link_local"),
        ("240.0.0.1", "reserved"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
    ]:
        with pytest.raises(AddressRefused) as info:
            check_pod_address(address, everything)
        assert info.value.reason == reason
    # unspecified/multicast stay refused even when listed
    for address, listed in [("0.0.0.0", "0.0.0.0/8"), ("224.0.0.1", "224.0.0.0/4")]:
        with pytest.raises(AddressRefused):
            check_pod_address(address, parse_networks(listed))
    # link-local passes only when listed (never by default)
    listed = parse_networks("169.254.0.0/16")
    assert str(check_pod_address("169.254.169.254", listed).address) == "169.254.169.254"


def test_translated_forms_need_both_addresses_allowed() -> None:
    # NAT64 of a private address: refused unless the NAT64 prefix is allowed too
    with pytest.raises(AddressRefused, match="outside"):
        check_pod_address("64:ff9b::a00:5", DEFAULT)
    allowed = parse_networks("10.0.0.0/8,64:ff9b::/96")
    decision = check_pod_address("64:ff9b::a00:5", allowed)
    assert str(decision.address) == "64:ff9b::a00:5"
    assert str(decision.judged) == "10.0.0.5"
    # ... but a NAT64 address of the metadata service never passes
    with pytest.raises(AddressRefused) as info:
        check_pod_address("64:ff9b::a9fe:a9fe", allowed)
    assert info.value.reason == "link_local"
    # 6to4 and the RFC 8215 local-use NAT64 prefix
    sixtofour = parse_networks("10.0.0.0/8,2002::/16")
    assert str(check_pod_address("2002:a00:5::1", sixtofour).judged) == "10.0.0.5"
    with pytest.raises(AddressRefused):
        check_pod_address("2002:7f00:1::1", sixtofour)
    local64 = parse_networks("10.0.0.0/8,64:ff9b:1::/48")
    # 10.0.0.5 in the /48 layout: 0a00 at bits 48-63, 0005 at bits 72-87
    assert str(check_pod_address("64:ff9b:1:a00:0:500::", local64).judged) == "10.0.0.5"


def test_network_kind() -> None:
    assert network_kind("100.64.0.1") == "vpn"
    assert network_kind("fd7a:115c:a1e0:ab12::1") == "vpn"
    assert network_kind("192.168.0.1") == "lan"
    assert network_kind("fd00::1") == "lan"
    assert network_kind("::ffff:c0a8:1") == "lan"
    assert network_kind("8.8.8.8") == "public"
    assert network_kind("2001:4860:4860::8888") == "public"
    assert network_kind(ipaddress.ip_address("10.1.2.3")) == "lan"
    with pytest.raises(AddressRefused):
        network_kind("localhost")


def test_pod_base_url() -> None:
    assert pod_base_url("192.168.1.100", 8000, DEFAULT) == "http://192.168.1.100:8000"
    assert pod_base_url("fd7a:115c:a1e0::5", 8000, DEFAULT) == "http://[fd7a:115c:a1e0::5]:8000"
    assert pod_base_url("::ffff:a00:5", 8443, DEFAULT, "https") == "https://10.0.0.5:8443"
    assert pod_base_url("127.0.0.1", 9, WITH_LOOPBACK) == "http://127.0.0.1:9"
    with pytest.raises(AddressRefused):
        pod_base_url("169.254.169.254", 80, DEFAULT)
    with pytest.raises(AddressRefused):
        pod_base_url("localhost", 8000, WITH_LOOPBACK)
    for port in (0, 65536, -1, True):
        with pytest.raises(ValueError, match="port"):
            pod_base_url("10.0.0.5", port, DEFAULT)
    with pytest.raises(ValueError, match="scheme"):
        pod_base_url("10.0.0.5", 8000, DEFAULT, "file")


def test_parse_networks() -> None:
    nets = parse_networks(DEFAULT_POD_NETWORKS)
    assert [str(n) for n in nets] == DEFAULT_POD_NETWORKS.split(",")
    assert [str(n) for n in parse_networks(" 10.0.0.0/8 , 10.0.0.0/8,127.0.0.1,")] == [
        "10.0.0.0/8",
        "127.0.0.1/32",
    ]
    for bad, named in [
        ("10.0.0.0/8,10.0.0.1/8", "10.0.0.1/8"),  # host bits set
        ("10.0.0.0/33", "10.0.0.0/33"),
        ("example.com/24", "example.com/24"),
        ("10.0.0.0/8;192.168.0.0/16", "10.0.0.0/8;192.168.0.0/16"),
        ("fe80::/10%eth0", "fe80::/10%eth0"),
    ]:
        with pytest.raises(ValueError, match="invalid network") as info:
            parse_networks(bad)
        assert named in str(info.value)
    for empty in ("", " , ,"):
        with pytest.raises(ValueError, match="no network"):
            parse_networks(empty)


def test_non_string_is_refused() -> None:
    for value in (2852039166, None, b"10.0.0.5", ipaddress.ip_address("10.0.0.5")):
        with pytest.raises(AddressRefused):
            check_pod_address(value, DEFAULT)  # type: ignore[arg-type]


ip_text = st.one_of(
    st.ip_addresses().map(str),
    st.ip_addresses().map(lambda a: a.exploded),
    st.ip_addresses(v=4).map(lambda a: str(int(a))),
    st.ip_addresses(v=4).map(lambda a: f"::ffff:{a}"),
    st.ip_addresses(v=4).map(lambda a: str(ipaddress.IPv6Address(f"::ffff:{a}"))),
    st.ip_addresses(v=4).map(lambda a: str(ipaddress.IPv6Address(f"64:ff9b::{a}"))),
    st.sampled_from(["10.", "127.", "169.254.", "100.64.", "fd7a:115c:a1e0::", "::ffff:"]).flatmap(
        lambda prefix: st.text("0123456789abcdefx.:%[] ", max_size=20).map(lambda s: prefix + s)
    ),
    st.text(max_size=50),
)
networks = st.sampled_from(
    [
        DEFAULT,
        WITH_LOOPBACK,
        parse_networks("0.0.0.0/0,::/0"),
        parse_networks("10.1.0.0/16,64:ff9b::/96"),
        parse_networks("169.254.169.254/32,2002::/16,::ffff:0:0:0/96"),
    ]
)


@settings(max_examples=400, deadline=None)
@given(ip_text, networks)
def test_anything_is_refused_or_inside_an_allowed_network(text: str, allowed: tuple) -> None:  # type: ignore[type-arg]
    try:
        decision = check_pod_address(text, allowed)
    except AddressRefused as exc:
        assert exc.reason
        return
    assert any(decision.judged in net for net in allowed if net.version == decision.judged.version)
    assert decision.network in allowed
    assert decision.judged in decision.network
    # the connect address is the literal given, or the IPv4 address it maps to
    assert str(decision.address) == text or text.startswith("::ffff:")
    assert not decision.judged.is_unspecified and not decision.judged.is_multicast
