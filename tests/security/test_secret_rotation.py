"""Stream-secret rotation: ``platebridge-portal pod rotate-secret`` gives the pod a new secret
and prints it once. Stream tokens signed with the old secret are refused by the portal's proxy
(a token never seen before: at once; one the proxy has just accepted: once its access-cache entry
expires — the only grace); tokens signed with the new secret work; the portal's POD-side tokens
are signed with the new secret from then on (so the POD needs it in its config). Real portal
process (SQLite) and the scripted POD on loopback."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest

from platebridge.core.tokens import (
    TokenError,
    b64url_decode,
    verify_stream_token,
)
from tests.portal.relay_upstreams import LoopThread
from tests.portal.streaming_support import (
    FakePod,
    PortalProc,
    heartbeat,
    portal_process,
    stream_token,
)
from tests.support import builders
from tests.support.portal import cli_json, new_sqlite_url, seed_company

pytestmark = pytest.mark.e2e  # a real portal process (tests/conftest.py guards it)

CACHE_SECONDS = 1.0


@pytest.fixture(scope="module")
def setup() -> Iterator[tuple[PortalProc, FakePod]]:
    lt = LoopThread()
    pod = FakePod(lt)
    env = {"PLATEBRIDGE_STREAM_AUTH_CACHE_SECONDS": str(CACHE_SECONDS)}
    try:
        with portal_process(new_sqlite_url(), env) as p:
            yield p, pod
    finally:
        pod.close()
        lt.stop()


def _forge(template: str, secret: str) -> str:
    """A token with ``template``'s claims (fresh ``iat``) signed with ``secret``."""
    c = json.loads(b64url_decode(template.split(".")[0]))
    return builders.stream_token(
        c["camera_id"],
        pod_id=c["pod_id"],
        user_id=c["user_id"],
        secret=secret,
        iat=int(time.time()),
    )


def _proxy(p: PortalProc, pod_id: str, token: str) -> httpx.Response:
    return httpx.get(
        f"{p.url}/api/pod/proxy-stream/{pod_id}?camera_id=gate-camera-1&token={quote(token)}",
        timeout=10,
    )


def test_rotate_secret_refuses_old_tokens_and_signs_with_the_new_one(
    setup: tuple[PortalProc, FakePod],
) -> None:
    p, pod = setup
    seeded = seed_company(p.db_url)
    old_secret = seeded.stream_token_secret
    heartbeat(p.url, seeded, "127.0.0.1", pod.port)
    session = p.login(seeded.email, seeded.password)
    issued = stream_token(p.url, session, seeded.pod_id, "gate-camera-1").json()["token"]
    verify_stream_token(issued, old_secret)  # the portal signs viewer tokens with the pod secret
    assert _proxy(p, seeded.pod_id, issued).status_code == 200  # now in the access cache
    unseen_old = _forge(issued, old_secret)  # valid, never presented before

    out = cli_json(p.db_url, "pod", "rotate-secret", "--pod-id", seeded.pod_id)
    new_secret = out["stream_token_secret"]
    assert new_secret and new_secret != old_secret and out["pod_id"] == seeded.pod_id

    r = _proxy(p, seeded.pod_id, unseen_old)
    assert r.status_code == 401, r.text
    assert r.json()["error"] == "invalid_stream_token"
    time.sleep(CACHE_SECONDS + 0.5)  # the grace of a just-accepted token ends with its entry
    r = _proxy(p, seeded.pod_id, issued)
    assert r.status_code == 401 and r.json()["error"] == "invalid_stream_token"

    assert _proxy(p, seeded.pod_id, _forge(issued, new_secret)).status_code == 200
    fresh = stream_token(p.url, session, seeded.pod_id, "gate-camera-1").json()["token"]
    verify_stream_token(fresh, new_secret)
    with pytest.raises(TokenError):
        verify_stream_token(fresh, old_secret)
    # What the portal sent upstream last is signed with the new secret: a POD still configured
    # with the old one would refuse it (hence: new secret into the POD config, restart).
    upstream = pod.tokens[-1]
    verify_stream_token(upstream, new_secret)
    with pytest.raises(TokenError):
        verify_stream_token(upstream, old_secret)
    assert new_secret not in p.output() and old_secret not in p.output()


def test_rotate_secret_from_the_pods_page(setup: tuple[PortalProc, FakePod]) -> None:
    """The admin's page action: the new secret is shown once on the page, it is the one the
    portal now uses, and the pods page afterwards does not show it again."""
    p, pod = setup
    seeded = seed_company(p.db_url)
    heartbeat(p.url, seeded, "127.0.0.1", pod.port)
    with httpx.Client(base_url=p.url, timeout=10) as client:
        login_page = client.get("/login").text
        form = {"email": seeded.email, "password": seeded.password}
        if 'name="csrf_token"' in login_page:
            form["csrf_token"] = _value(login_page, 'name="csrf_token" value="')
        assert client.post("/login", data=form).status_code in (200, 303)
        csrf = _value(client.get("/pods").text, 'name="csrf_token" value="')
        r = client.post(f"/pods/{seeded.pod_id}/rotate-secret", data={"csrf_token": csrf})
        assert r.status_code == 200, r.text[:500]
        secret = _value(r.text, 'id="shown-secret" class="mono" readonly value="')
        assert secret and secret != seeded.stream_token_secret
        assert 'id="shown-key"' not in r.text  # no API key was issued
        assert secret not in client.get("/pods").text
    session = p.login(seeded.email, seeded.password)
    token = stream_token(p.url, session, seeded.pod_id, "gate-camera-1").json()["token"]
    verify_stream_token(token, secret)
    assert _proxy(p, seeded.pod_id, _forge(token, secret)).status_code == 200
    r = _proxy(p, seeded.pod_id, _forge(token, seeded.stream_token_secret))
    assert r.status_code == 401


def _value(html: str, marker: str) -> str:
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]
