"""Every library's DEBUG logging is redacted: the portal (``--log-level debug``) and the POD
agent (``log_level: debug``, tunnel on, the pod in tunnel mode) run as real processes; a full
session (heartbeats, tunnel, playlist and segment through the proxy, recorded footage and a
share link through the tunnel, direct-mode live and footage tokens and fetches, a login)
runs; neither output holds any secret. websockets alone used to log the tunnel's
``Authorization: Bearer pbk_…`` request header."""

from __future__ import annotations

import re
import time
from pathlib import Path
from urllib.parse import urljoin

import httpx
import pytest

from tests.security.test_no_secret_leaks import footage_and_share
from tests.support.agent import Agent
from tests.support.camera import TestCamera, camera_available
from tests.support.portal import new_sqlite_url, seed_company, start_portal
from tests.support.procs import wait_until
from tests.support.secrets import assert_no_secrets
from tests.tunnel.support import SECRET_KEY, agent_config, set_mode, wait_tunnel

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not camera_available(), reason="needs ffmpeg and the GStreamer camera"),
]

RTSP_PASSWORD = "DbgCamPass-7d6c5b4a"
#: a segment line of a rewritten playlist (it carries the viewer's token on)
SEGMENT = re.compile(r"^([^#\s]\S*)$", re.M)


def test_debug_logs_of_both_programs_hold_no_secret(tmp_path: Path) -> None:
    db = new_sqlite_url(tmp_path)
    env = {"PLATEBRIDGE_POD_NETWORKS": "127.0.0.0/8", "PLATEBRIDGE_SECRET_KEY": SECRET_KEY}
    portal = start_portal(db, env, log_dir=tmp_path, log_level="debug")
    base = portal.url
    camera = TestCamera(tmp_path, user="camuser", password=RTSP_PASSWORD, fps=10)
    agent: Agent | None = None
    tokens: list[str] = []
    try:
        camera.start()
        co = seed_company(db)
        set_mode(db, co, "tunnel")
        config = agent_config(tmp_path, co, camera.url, portal_url=base, log_level="debug")
        agent = Agent(tmp_path, config)
        with httpx.Client(base_url=base, timeout=20) as c:
            r = c.post("/api/auth/login", json={"email": co.email, "password": co.password})
            assert r.status_code == 200, r.text
            session = r.json()["access_token"]
            cookie = c.cookies.get("pb_session") or session
            auth = {"Authorization": f"Bearer {session}"}
            wait_tunnel(base, auth, co.pod_id, timeout=40)

            def issue() -> str | None:
                r = c.post(
                    "/api/pod/stream-token",
                    headers=auth,
                    json={"pod_id": co.pod_id, "camera_id": "gate-camera-1"},
                )
                if r.status_code == 409:
                    return None
                assert r.status_code == 200, r.text
                return str(r.json()["token"])

            token = wait_until(issue, timeout=40, what="camera active")
            tokens.append(token)
            q = {"camera_id": "gate-camera-1", "token": token}

            def playlist() -> httpx.Response | None:
                r = c.get(f"/api/pod/proxy-stream/{co.pod_id}", params=q)
                return r if r.status_code == 200 and SEGMENT.search(r.text) else None

            listing = wait_until(playlist, timeout=30, what="a playlist with a segment")
            segment = SEGMENT.search(listing.text).group(1)  # type: ignore[union-attr]
            r = c.get(urljoin(str(listing.url), segment))
            assert r.status_code == 200 and len(r.content) > 0, (segment, r.text[:200])
            # recorded footage and a share link, through the tunnel
            footage = footage_and_share(c, auth, co.pod_id, [])
            # direct mode: the token's direct URL, fetched from the POD itself
            set_mode(db, co, "direct")
            r = c.post(
                "/api/pod/stream-token",
                headers=auth,
                json={"pod_id": co.pod_id, "camera_id": "gate-camera-1"},
            )
            assert r.status_code == 200, r.text
            tokens.append(r.json()["token"])
            direct = r.json().get("direct_url")
            assert direct, r.json()
            assert httpx.get(direct, timeout=10).status_code == 200
            # a footage token's direct media URL, fetched from the POD itself
            now = time.time()
            r = c.post(
                "/api/footage-token",
                headers=auth,
                json={"pod_id": co.pod_id, "camera_id": "gate-camera-1",
                      "from": now - 120, "to": now},
            )  # fmt: skip
            assert r.status_code == 200 and r.json()["method"] == "direct", r.text
            tokens.append(r.json()["token"])
            media_url = r.json()["media_url"]
            assert media_url.startswith("http://127.0.0.1:") and "token=" in media_url
            media = httpx.get(f"{media_url}&start={now - 30:.3f}&duration=2", timeout=10)
            assert media.status_code == 200, media.text[:200]
            # a second login, by cookie afterwards
            r = c.post("/api/auth/login", json={"email": co.email, "password": co.password})
            assert r.status_code == 200
            second = r.json()["access_token"]
            assert c.get("/api/cameras").status_code == 200
        time.sleep(2.5)  # more heartbeats and tunnel pings at DEBUG
    finally:
        if agent is not None:
            agent.close()
        camera.stop()
        portal.stop()

    secrets = {
        "pod key": co.api_key,
        "stream secret": co.stream_token_secret,
        "password": co.password,
        "rtsp password": RTSP_PASSWORD,
        "session token": session,
        "second session token": second,
        "session cookie": cookie,
        **{f"stream token {i}": t for i, t in enumerate(tokens)},
        **{f"stream token signature {i}": t.split(".")[1] for i, t in enumerate(tokens)},
        **footage,
    }
    logs = {
        "portal": portal.log_path.read_text(errors="replace"),
        "agent": agent.proc.log_path.read_text(errors="replace") if agent else "",
    }
    assert " DEBUG websockets" in logs["agent"], logs["agent"][-2000:]  # the tunnel logged
    assert "DEBUG" in logs["portal"] or "debug" in logs["portal"].lower()
    assert_no_secrets(logs, secrets, patterns=[re.compile("pbk_")], allowed=["pbk_***"])
    assert "Authorization: ***" in logs["agent"]  # the header line, redacted
