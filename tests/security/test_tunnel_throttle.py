"""Refused keys on the tunnel endpoint (``WS /api/pod/tunnel``) count in the heartbeat-key
throttle of their source address: past the limit that address gets 429 + ``Retry-After``
*before the upgrade* — even with a valid pod key, on the tunnel and on the heartbeat (one shared
budget) — while another address opens the tunnel with the same key. Real portal process;
the upgrade requests are raw HTTP/1.1 over loopback sockets bound to a chosen source address.
"""

from __future__ import annotations

import base64
import json
import os
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support.portal import SeededCompany, new_sqlite_url, run_portal, seed_company

pytestmark = pytest.mark.e2e  # a real portal process (tests/conftest.py guards it)

LIMIT = 3
BAD_KEY = "pbk_" + "x" * 40


@pytest.fixture(scope="module")
def portal() -> Iterator[tuple[str, SeededCompany]]:
    db = new_sqlite_url()
    env = {"PLATEBRIDGE_THROTTLE_HEARTBEAT_PER_IP": str(LIMIT)}
    with run_portal(db, env=env) as url:
        yield url, seed_company(db)


def upgrade(url: str, key: str, source: str) -> tuple[int, dict[str, str], bytes]:
    """Send a WebSocket upgrade for the tunnel from ``source``; return the HTTP answer (status,
    lower-cased headers, body start) and close."""
    port = urlsplit(url).port
    assert port
    nonce = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET /api/pod/tunnel HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {nonce}\r\nSec-WebSocket-Version: 13\r\n"
        f"Authorization: Bearer {key}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0)) as s:
        s.sendall(request.encode())
        data = b""
        while b"\r\n\r\n" not in data and len(data) < 65536:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(rest) < length:
            chunk = s.recv(4096)
            if not chunk:
                break
            rest += chunk
        return int(lines[0].split(" ")[1]), headers, rest


def test_refused_tunnel_keys_are_throttled_per_source(
    portal: tuple[str, SeededCompany],
) -> None:
    url, seeded = portal
    attacker, other = "127.0.0.3", "127.0.0.4"
    # Positive control: the real key opens the tunnel (101) from a clean address.
    status, _, _ = upgrade(url, seeded.api_key, "127.0.0.5")
    assert status == 101
    for _ in range(LIMIT):
        status, _, _ = upgrade(url, BAD_KEY, attacker)
        assert status == 403
    # Now the attacker's address is refused before the upgrade, even with the right key …
    status, headers, body = upgrade(url, seeded.api_key, attacker)
    assert status == 429, (status, body)
    assert int(headers["retry-after"]) >= 1
    assert json.loads(body)["error"] == "too_many_requests"
    assert seeded.api_key.encode() not in body
    # … and the budget is shared with the heartbeat endpoint (same source, right key).
    with httpx.Client(transport=httpx.HTTPTransport(local_address=attacker)) as client:
        r = client.post(
            f"{url}/api/pod/heartbeat",
            headers=seeded.pod_auth,
            json={"pod_id": seeded.pod_id, "cameras": []},
            timeout=10,
        )
    assert r.status_code == 429, r.text
    # Another address is not affected: the real POD keeps its tunnel.
    status, _, _ = upgrade(url, seeded.api_key, other)
    assert status == 101


def test_refused_heartbeat_keys_also_close_the_tunnel_door(
    portal: tuple[str, SeededCompany],
) -> None:
    url, seeded = portal
    source = "127.0.0.6"
    with httpx.Client(transport=httpx.HTTPTransport(local_address=source)) as client:
        for _ in range(LIMIT):
            r = client.post(
                f"{url}/api/pod/heartbeat",
                headers={"Authorization": f"Bearer {BAD_KEY}"},
                json={"pod_id": seeded.pod_id, "cameras": []},
                timeout=10,
            )
            assert r.status_code == 401
    status, headers, _ = upgrade(url, seeded.api_key, source)
    assert status == 429 and "retry-after" in headers
