"""The webhook sender without a receiver: the signature recipe, the SSRF rules, redaction."""

from __future__ import annotations

import asyncio
import hashlib
import hmac

import pytest

from platebridge.portal.alerts.webhook import (
    WebhookError,
    check_webhook_address,
    send_webhook,
    sign,
)
from platebridge.portal.settings import PortalSettings
from platebridge.portal.streaming.ssrf import AddressRefused, parse_networks

SECRET = "whsec_test_0123456789"


def _settings(networks: str = "") -> PortalSettings:
    return PortalSettings(
        database_url="sqlite:///unused.db", alert_webhook_networks=networks, alert_webhook_timeout=2
    )


def test_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    body = b'{"event":"test","schema":"platebridge.alert/1"}'
    expected = hmac.new(SECRET.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign(SECRET, 1700000000, body) == f"t=1700000000,v1={expected}"
    # a documented vector: key "secret", t=0, body "{}"
    vector = hmac.new(b"secret", b"0.{}", hashlib.sha256).hexdigest()
    assert sign("secret", 0, b"{}") == f"t=0,v1={vector}"
    assert sign(SECRET, 1700000001, body) != sign(SECRET, 1700000000, body)


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "::1", "10.1.2.3", "192.168.0.10", "100.64.0.1", "::ffff:127.0.0.1",
     "169.254.169.254", "0.0.0.0", "224.0.0.1", "fe80::1"],
)  # fmt: skip
def test_non_public_addresses_are_refused_by_default(address: str) -> None:
    with pytest.raises(AddressRefused):
        check_webhook_address(address, ())


def test_public_addresses_pass_and_listed_private_networks_pass() -> None:
    assert str(check_webhook_address("93.184.216.34", ()).address) == "93.184.216.34"
    assert str(check_webhook_address("2606:4700::1111", ()).address) == "2606:4700::1111"
    extra = parse_networks("127.0.0.0/8,10.0.0.0/8")
    assert str(check_webhook_address("127.0.0.1", extra).address) == "127.0.0.1"
    assert str(check_webhook_address("10.9.8.7", extra).address) == "10.9.8.7"
    with pytest.raises(AddressRefused):
        check_webhook_address("192.168.1.1", extra)


def test_metadata_address_is_refused_even_when_link_local_is_allowed() -> None:
    extra = parse_networks("169.254.0.0/16")
    assert str(check_webhook_address("169.254.10.10", extra).address) == "169.254.10.10"
    with pytest.raises(AddressRefused, match="metadata"):
        check_webhook_address("169.254.169.254", extra)


def _refusal(url: str, settings: PortalSettings) -> WebhookError:
    with pytest.raises(WebhookError) as info:
        asyncio.run(send_webhook(url, SECRET, b"{}", "d-1", "test", settings))
    return info.value


def test_loopback_target_refused_without_a_request_and_redacted() -> None:
    url = "http://127.0.0.1:9/hooks/abc?token=receiver-token"
    error = _refusal(url, _settings())
    assert "SSRF" in error.message and "loopback" in error.message
    assert error.message.startswith("http://127.0.0.1:9:")
    for leaked in ("hooks", "abc", "receiver-token", SECRET):
        assert leaked not in error.message and leaked not in str(error)
    assert error.status_code is None


def test_metadata_target_refused_always() -> None:
    url = "http://169.254.169.254/latest/meta-data/?x=1"
    error = _refusal(url, _settings("169.254.0.0/16"))
    assert "metadata" in error.message and "latest" not in error.message


def test_bad_urls_are_clear_errors() -> None:
    assert "http(s)" in _refusal("ftp://example.com/x", _settings()).message
    assert "resolve" in _refusal("http://no-such-host.invalid/x", _settings()).message


def test_connection_failure_is_redacted() -> None:
    # a closed port on an allowed loopback address: connect error, path not in the message
    url = "http://127.0.0.1:1/secret-path?token=t0k"
    error = _refusal(url, _settings("127.0.0.0/8"))
    assert error.message == "http://127.0.0.1:1: could not connect"
