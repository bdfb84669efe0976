"""Disabling a user stops what they are watching (docs/portal.md, Users lifecycle: how soon).

The live WebSocket through the portal, open by session and by stream token, ends with a policy
close (1008) at the next re-authorisation after the disable — within ``RECHECK_SECONDS`` plus
the authorisation cache's lifetime (here shortened to 0.5 s and 1 s; production: 30 s + 2 s);
the HLS proxy path refuses the user's session and stream token within the cache lifetime.
Fast lane: the real portal app served by uvicorn in a thread, a loopback fMP4 "POD" (as
``test_live_relay.py``), SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from platebridge.portal.app import create_app
from platebridge.portal.streaming import live as live_module
from tests.portal.relay_upstreams import LoopThread
from tests.portal.streaming_support import LOOPBACK_NETWORKS, heartbeat, stream_token
from tests.portal.test_live_relay import (
    CAMERA,
    LivePod,
    LivePortal,
    open_ws,
    read_until_closed,
    start_of_stream,
    wait_until,
)
from tests.support.inprocess import settings_from_env
from tests.support.portal import in_session, login, seed_company
from tests.support.procs import free_port

CACHE_SECONDS = 1.0
RECHECK_SECONDS = 0.5
#: Scheduling slack on a loaded 2-core machine (a bound on "stops", not a speed goal).
SLACK = 10.0


@pytest.fixture(scope="module")
def lt() -> Iterator[LoopThread]:
    loop = LoopThread()
    yield loop
    loop.stop()


@pytest.fixture(scope="module")
def portal(db_url: str, lt: LoopThread) -> Iterator[LivePortal]:
    env = {
        "PLATEBRIDGE_POD_NETWORKS": LOOPBACK_NETWORKS,
        "PLATEBRIDGE_STREAM_AUTH_CACHE_SECONDS": str(CACHE_SECONDS),
    }
    app = create_app(settings_from_env(db_url, env))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    done = asyncio.run_coroutine_threadsafe(server.serve(), lt.loop)
    wait_until("the portal serves", lambda: server.started or done.done())
    assert not done.done()
    try:
        yield LivePortal(f"http://127.0.0.1:{port}", app, lt)
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            done.result(15)


def add_viewer(db_url: str, company_id: str) -> tuple[str, str]:
    from platebridge.portal.services import admin

    email = f"watcher-{time.monotonic_ns()}@example.test"

    async def create(s: object) -> str:
        user = await admin.create_user(s, company_id, email, "watcher-password", "viewer")  # type: ignore[arg-type]
        return str(user.id)

    return asyncio.run(in_session(db_url, create)), email


def test_disable_ends_open_live_views_and_proxy_access(
    portal: LivePortal, lt: LoopThread, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live_module, "RECHECK_SECONDS", RECHECK_SECONDS)
    pod = LivePod(lt).start()
    try:
        tenant = seed_company(db_url)
        heartbeat(portal.url, tenant, "127.0.0.1", pod.port, (CAMERA,))
        admin_auth = login(portal.url, tenant.email, tenant.password)
        viewer_id, email = add_viewer(db_url, tenant.company_id)
        viewer = login(portal.url, email, "watcher-password")
        issued = stream_token(portal.url, viewer, tenant.pod_id, CAMERA)
        assert issued.status_code == 200, issued.text
        token = issued.json()["token"]
        playlist = f"{portal.url}/api/pod/proxy-stream/{tenant.pod_id}"
        by_session = open_ws(portal.ws_url(tenant.pod_id), viewer)
        by_token = open_ws(portal.ws_url(tenant.pod_id, token=token))
        with by_session, by_token:
            start_of_stream(by_session)
            start_of_stream(by_token)
            # Authorised before (the fake POD serves no HLS: anything but a refusal of the user).
            before = httpx.get(playlist, params={"camera_id": CAMERA, "token": token})
            assert before.status_code not in (401, 403, 404), before.text
            r = httpx.post(f"{portal.url}/api/users/{viewer_id}/disable", headers=admin_auth)
            assert r.status_code == 200 and r.json()["status"] == "disabled"
            disabled_at = time.monotonic()
            limit = RECHECK_SECONDS + CACHE_SECONDS + SLACK
            for ws, expected in ((by_session, "unauthorized"), (by_token, "invalid_stream_token")):
                messages, code = read_until_closed(ws, seconds=limit)
                assert code == 1008
                last = messages[-1]
                assert isinstance(last, str) and json.loads(last)["error"] == expected
            closed_after = time.monotonic() - disabled_at
            assert closed_after < limit
        # The proxy: refused within the cache lifetime, by session and by token.
        time.sleep(CACHE_SECONDS)
        r = httpx.get(playlist, params={"camera_id": CAMERA}, headers=viewer)
        assert (r.status_code, r.json()["error"]) == (401, "unauthorized")
        r = httpx.get(playlist, params={"camera_id": CAMERA, "token": token})
        assert (r.status_code, r.json()["error"]) == (401, "invalid_stream_token")
        # A new live view is refused before the upgrade.
        r = httpx.post(
            f"{portal.url}/api/auth/login", json={"email": email, "password": "watcher-password"}
        )
        assert (r.status_code, r.json()["error"]) == (403, "account_disabled")
    finally:
        pod.close()
