"""Stream-token attacks against the portal's proxy routes (token in the query, no session):
every one is a JSON 401 (422 when longer than the route accepts), never a 500, never a stream."""

from __future__ import annotations

import httpx
import pytest

from platebridge.core.tokens import b64url_encode
from tests.security.conftest import World
from tests.security.token_attacks import Attack, attacks

pytestmark = pytest.mark.e2e  # a real portal process (tests/conftest.py guards it)

PROXY_PATHS = ("proxy-stream/{pod}", "proxy-stream/{pod}/segment/seg_1.ts", "snapshot/{pod}")


def portal_attacks(world: World) -> list[Attack]:
    a = world.a
    found = attacks(a.stream_secret, world.b.stream_secret, a.admin_id, a.pod_id, a.camera_id)
    unsigned_deep = b64url_encode(b"[" * 1500) + ".c2ln"
    found.append(Attack("unsigned_deep_nesting", unsigned_deep, "malformed"))
    found.append(Attack("user_id_not_uuid", b64url_encode(b'{"user_id":[1]}') + ".c2ln", "x"))
    return found


def test_portal_refuses_every_forged_token(world: World) -> None:
    a = world.a
    for attack in portal_attacks(world):
        for template in PROXY_PATHS:
            url = f"{world.url}/api/pod/{template.format(pod=a.pod_id)}"
            r = httpx.get(url, params={"camera_id": a.camera_id, "token": attack.token}, timeout=10)
            where = (attack.name, template, r.status_code, r.text[:200])
            expected = {422} if len(attack.token) > 2048 else {401}
            if attack.name == "empty":
                expected = {401}
            assert r.status_code in expected, where
            assert r.headers["content-type"].startswith("application/json"), where
            assert a.stream_secret not in r.text, where
            if len(attack.token) > 8:
                assert attack.token not in r.text, where  # never echoed


@pytest.mark.parametrize("who", ["admin", "viewer"])
def test_valid_token_of_company_a_opens_nothing_of_b(world: World, who: str) -> None:
    """A genuine token issued to A works only for A's camera: not for B's pod or camera."""
    a, b = world.a, world.b
    auth = a.admin_auth if who == "admin" else a.viewer_auth
    r = httpx.post(
        f"{world.url}/api/pod/stream-token",
        headers=auth,
        json={"pod_id": a.pod_id, "camera_id": a.camera_id},
    )
    assert r.status_code == 200, r.text
    tok = r.json()["token"]
    for pod_id, cam in ((b.pod_id, b.camera_id), (b.pod_id, a.camera_id), (a.pod_id, b.camera_id)):
        r = httpx.get(
            f"{world.url}/api/pod/proxy-stream/{pod_id}",
            params={"camera_id": cam, "token": tok},
            timeout=10,
        )
        assert r.status_code in (401, 404), (pod_id, cam, r.text)
        for f in b.fingerprints():
            assert f not in r.text
