"""``stream=sub`` on the portal: the stream-token request, the live URL, the POD request (the
parameter reaches the POD) and the fan-out key (main and substream are two upstreams).

Fast lane, as ``test_live_relay.py`` (whose fixtures it uses): the real portal app under
uvicorn in this process, a loopback "POD" serving a byte-built fMP4 body. The real agent with
a two-path camera: ``tests/pod/test_substream_e2e.py``.
"""

from __future__ import annotations

import contextlib

import httpx

from tests.portal import test_live_relay as relay
from tests.portal.test_live_relay import (
    CAMERA,
    INIT,
    World,
    open_ws,
    refusal,
    start_of_stream,
    wait_until,
)

# test_live_relay's fixtures (a fixture's name is the name it has in this module)
lt = relay.lt
live_portal = relay.live_portal
pod_world = relay.world


def token_request(world: World, **extra: object) -> httpx.Response:
    body = {"pod_id": world.tenant.pod_id, "camera_id": CAMERA, **extra}
    url = f"{world.portal.url}/api/pod/stream-token"
    return httpx.post(url, headers=world.auth, json=body, timeout=15)


def test_stream_token_live_url_carries_stream_sub(pod_world: World) -> None:
    pod_id = pod_world.tenant.pod_id
    main = token_request(pod_world).json()  # an older client: no "stream" key
    assert "stream=" not in main["live_url"]
    explicit = token_request(pod_world, stream="main").json()
    assert "stream=" not in explicit["live_url"]
    sub = token_request(pod_world, stream="sub").json()
    assert sub["live_url"].startswith(f"/api/pod/live/{pod_id}?camera_id={CAMERA}&token=")
    assert sub["live_url"].endswith("&stream=sub")
    assert sub["proxy_url"].startswith(f"/api/pod/proxy-stream/{pod_id}?")  # HLS: unchanged
    assert "stream=" not in sub["proxy_url"]
    for bad in ({"stream": "third"}, {"stream": None}, {"stream": 1}, {"quality": "low"}):
        r = token_request(pod_world, **bad)
        assert r.status_code == 422, bad  # unknown keys: refused as before (extra="forbid")
        assert r.json()["error"] == "validation_error"


def test_sub_viewers_share_their_own_upstream_which_asks_the_pod_for_stream_sub(
    pod_world: World,
) -> None:
    ws_base = pod_world.portal.url.replace("http://", "ws://")
    sub_url = ws_base + token_request(pod_world, stream="sub").json()["live_url"]
    main_url = pod_world.portal.ws_url(pod_world.tenant.pod_id)
    with contextlib.ExitStack() as stack:
        subs = [stack.enter_context(open_ws(sub_url)) for _ in range(2)]
        for ws in subs:
            hello, init, _ = start_of_stream(ws)
            assert init == INIT and hello["camera_id"] == CAMERA
        main = stack.enter_context(open_ws(main_url, pod_world.auth))
        assert start_of_stream(main)[1] == INIT
        assert pod_world.pod.requests == [f"/live/{CAMERA}"] * 2  # one per stream, not per viewer
        queries = sorted(pod_world.pod.tokens)
        assert queries[0].startswith("token=") and "stream=" not in queries[0]
        assert queries[1].startswith("token=") and queries[1].endswith("&stream=sub")
        keys = {k[2]: u.viewers for k, u in pod_world.portal.live.upstreams.items() if u.viewers}
        assert keys == {"main": 1, "sub": 2}
    wait_until("both upstreams closed", lambda: pod_world.pod.open_bodies == 0)


def test_an_invalid_stream_is_422_before_the_upgrade(pod_world: World) -> None:
    url = pod_world.portal.ws_url(pod_world.tenant.pod_id)
    for bad in ("third", "SUB", ""):
        status, body = refusal(f"{url}&stream={bad}", pod_world.auth)
        assert status == 422 and body["error"] == "validation_error", bad
        assert [d["field"] for d in body["detail"]] == ["stream"]
    assert pod_world.pod.requests == []
    with open_ws(f"{url}&stream=main", pod_world.auth) as ws:  # explicit main: the main upstream
        assert start_of_stream(ws)[1] == INIT
    assert pod_world.pod.tokens and "stream=" not in pod_world.pod.tokens[0]


def test_direct_mode_live_url_carries_stream_sub(pod_world: World) -> None:
    url = f"{pod_world.portal.url}/api/pods/{pod_world.tenant.pod_id}"
    r = httpx.patch(url, json={"stream_mode": "direct"}, headers=pod_world.auth, timeout=15)
    assert r.status_code == 200, r.text
    data = token_request(pod_world, stream="sub").json()
    assert data["stream_mode"] == "direct"
    base = f"ws://127.0.0.1:{pod_world.pod.port}/live/{CAMERA}/ws?token={data['token']}"
    assert data["live_url"] == base + "&stream=sub"
    assert "stream=" not in token_request(pod_world).json()["live_url"]  # main: as before
