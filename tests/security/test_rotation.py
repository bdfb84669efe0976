"""Key rotation: ``pod rotate-key`` revokes the old pod key at once (no grace period: a POD
holding a leaked key must be cut off now; the operator pastes the new key into the POD's
config). The new key works immediately, and the stream secret is untouched."""

from __future__ import annotations

import httpx
import pytest

from tests.security.conftest import World
from tests.security.world import heartbeat_body
from tests.support.portal import cli_json

pytestmark = pytest.mark.e2e  # a real portal process (tests/conftest.py guards it)


def test_rotate_key_revokes_the_old_key_immediately(world: World) -> None:
    a = world.a
    url = f"{world.url}/api/pod/heartbeat"
    body = heartbeat_body(a, a.shared_pod_id, a.ip)
    old = {"Authorization": f"Bearer {a.shared_api_key}"}
    assert httpx.post(url, headers=old, json=body).status_code == 200
    rotated = cli_json(
        world.db_url, "pod", "rotate-key", "--pod-id", a.shared_pod_id, "--company", a.company_id
    )
    new = {"Authorization": f"Bearer {rotated['api_key']}"}
    r = httpx.post(url, headers=old, json=body)
    assert (r.status_code, r.json()["error"]) == (401, "invalid_api_key")
    assert httpx.post(url, headers=new, json=body).status_code == 200
    a.shared_api_key = rotated["api_key"]
    # The other company's pod of the same name is not affected.
    b = world.b
    r = httpx.post(
        url,
        headers={"Authorization": f"Bearer {b.shared_api_key}"},
        json=heartbeat_body(b, b.shared_pod_id, b.ip),
    )
    assert r.status_code == 200
