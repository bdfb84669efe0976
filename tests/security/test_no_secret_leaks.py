"""Secrets never leak: a representative flow (heartbeats, logins good and bad, token issue,
proxy by session and by token, segment and snapshot, recorded footage by session and footage
token, a share link opened, revoked and refused, refused requests) with the portal and the POD
agent logging at DEBUG. No API key, stream secret, password, RTSP password, session, stream or
footage token or share-link secret appears in any log line, nor any secret in a response that
is not its owner's."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest

from tests.support.agent import Agent
from tests.support.builders import pod_config
from tests.support.camera import TestCamera
from tests.support.portal import new_sqlite_url, seed_company, start_portal
from tests.support.procs import wait_until
from tests.support.secrets import assert_no_secrets

pytestmark = pytest.mark.e2e  # a real portal process (tests/conftest.py guards it)

RTSP_PASSWORD = "CamPass-s3cret-9f8e7d"
WRONG_RTSP_PASSWORD = "WrongPass-s3cret-1a2b3c"
#: A ``token=`` / ``key=`` value that was not redacted (redaction leaves a short mask).
UNREDACTED = re.compile(r"(?:token|api_key|secret|password)=([A-Za-z0-9_\-.]{16,})", re.I)


def footage_and_share(
    c: httpx.Client, auth: dict[str, str], pod_id: str, responses: list[httpx.Response]
) -> dict[str, str]:
    """Recorded footage by session and by footage token (good, tampered, out of range), a
    share link opened (page, media, clip), revoked and opened again, also URL-encoded in a
    query: returns the secrets handed out, for the log search."""
    cam = {"camera_id": "gate-camera-1"}
    now = time.time()

    def recorded() -> float | None:
        r = c.get(
            f"/api/footage/{pod_id}",
            params={**cam, "from": now - 300, "to": now + 60},
            headers=auth,
        )
        spans = [s for s in r.json().get("spans", []) if s["kind"] == "recording"]
        return float(spans[0]["start"]) if r.status_code == 200 and spans else None

    start = wait_until(recorded, timeout=40, interval=1, what="a recorded span")
    r = c.post(
        "/api/footage-token",
        headers=auth,
        json={"pod_id": pod_id, **cam, "from": start, "to": start + 60},
    )
    assert r.status_code == 200, r.text
    responses.append(r)
    token = r.json()["token"]
    media = {**cam, "start": start, "duration": 2}
    for params, headers in (
        (media, auth),
        ({**media, "token": token}, {}),
        ({**media, "token": token + "x"}, {}),
        ({**media, "start": start + 3600, "token": token}, {}),  # outside the token's range
        ({**media, "start": now + 3600}, auth),  # nothing recorded: the POD's 404 relayed
    ):
        responses.append(c.get(f"/api/footage/{pod_id}/media", params=params, headers=headers))
    assert responses[-5].status_code == 200 and responses[-4].status_code == 200
    r = c.post(
        "/api/shares",
        headers=auth,
        json={"pod_id": pod_id, **cam, "from": start, "to": start + 4, "expires_in_hours": 1},
    )
    assert r.status_code == 201, r.text
    share_id, url = r.json()["id"], r.json()["url"]
    secret = url.rsplit("/s/", 1)[1]
    for path in (f"/s/{secret}", f"/s/{secret}/media", f"/s/{secret}/clip.mp4"):
        responses.append(c.get(path))
    assert responses[-3].status_code == 200 and responses[-2].status_code == 200
    responses.append(c.get("/login", params={"next": f"/s/{secret}"}))  # %2Fs%2Fpbs_… in a query
    responses.append(c.delete(f"/api/shares/{share_id}", headers=auth))
    responses.append(c.get(f"/s/{secret}/media"))
    assert responses[-1].status_code == 410
    return {
        "footage token": token,
        "footage token signature": token.split(".")[1],
        "share secret": secret,
        "share secret without its prefix": secret.removeprefix("pbs_"),
    }


def test_secrets_never_in_logs_or_foreign_responses(tmp_path: Path) -> None:
    db = new_sqlite_url(tmp_path)
    portal = start_portal(
        db, {"PLATEBRIDGE_POD_NETWORKS": "127.0.0.0/8"}, log_dir=tmp_path, log_level="debug"
    )
    base = portal.url
    agent: Agent | None = None
    camera = TestCamera(tmp_path, user="camuser", password=RTSP_PASSWORD, fps=10)
    responses: list[httpx.Response] = []
    try:
        camera.start()
        co = seed_company(db)
        wrong = camera.url.replace(RTSP_PASSWORD, WRONG_RTSP_PASSWORD)  # 401: ffmpeg logs it
        agent_dir = tmp_path / "agent"
        agent_dir.mkdir()
        config = pod_config(
            agent_dir,
            camera.url,
            tenant=co,
            portal_url=base,
            cameras=[{"camera_id": "wrong-pass", "name": "Wrong", "rtsp_url": wrong}],
            rtsp_timeout=1,
            log_level="debug",
        )
        agent = Agent(agent_dir, config)
        with httpx.Client(base_url=base, timeout=15) as c:
            responses.append(c.post("/api/auth/login", json={"email": co.email, "password": "x"}))
            responses.append(
                c.post("/api/auth/login", json={"email": co.email, "password": co.password})
            )
            session = responses[-1].json()["access_token"]
            auth = {"Authorization": f"Bearer {session}"}

            def active() -> bool:
                r = c.get("/api/cameras", headers=auth)
                responses.append(r)
                status = {cam["id"]: cam["status"] for cam in r.json()["cameras"]}
                return status.get("gate-camera-1") == "active" and "wrong-pass" in status

            wait_until(active, timeout=40, what="agent registered its active camera")
            r = c.post(
                "/api/pod/stream-token",
                headers=auth,
                json={"pod_id": co.pod_id, "camera_id": "gate-camera-1"},
            )
            assert r.status_code == 200, r.text
            stream_token = r.json()["token"]
            q = {"camera_id": "gate-camera-1"}
            for path in (
                f"/api/pod/proxy-stream/{co.pod_id}",
                f"/api/pod/proxy-stream/{co.pod_id}/segment/seg_1.ts",
                f"/api/pod/snapshot/{co.pod_id}",
            ):
                responses.append(c.get(path, params=q, headers=auth))
                responses.append(c.get(path, params={**q, "token": stream_token}))
                responses.append(c.get(path, params={**q, "token": stream_token + "x"}))
            footage = footage_and_share(c, auth, co.pod_id, responses)
            responses.append(c.get(f"/api/pods/{co.pod_id}", headers=auth))
            responses.append(c.get("/api/pods", headers=auth))
            responses.append(c.get("/api/audit", headers=auth))
            bad = {"Authorization": f"Bearer {co.api_key}x"}
            responses.append(c.post("/api/pod/heartbeat", headers=bad, json={"pod_id": "x"}))
            responses.append(
                c.post(
                    "/api/pod/heartbeat",
                    headers={"Authorization": f"Bearer {co.api_key}"},
                    json={"pod_id": co.pod_id, "cameras": [{"camera_id": co.stream_token_secret}]},
                )
            )
            responses.append(c.post("/api/auth/logout", headers=auth))
            responses.append(c.get("/api/cameras", headers=auth))  # revoked session
        # The agent's own API: refused tokens, health.
        for tok in (stream_token, "nope." + co.stream_token_secret[:10]):
            responses.append(agent.get("/stream", token=tok))
        responses.append(agent.get("/health"))
        time.sleep(2.5)  # a few more heartbeats and ffmpeg retries in the logs
    finally:
        if agent is not None:
            agent.close()
        camera.stop()
        portal.stop()

    secrets = {
        "api key": co.api_key,
        "stream secret": co.stream_token_secret,
        "password": co.password,
        "rtsp password": RTSP_PASSWORD,
        "wrong rtsp password": WRONG_RTSP_PASSWORD,
        "session token": session,
        "stream token": stream_token,
        "stream token signature": stream_token.split(".")[1],
        **footage,
    }
    logs = {
        "portal": portal.log_path.read_text(errors="replace"),
        "agent": agent.proc.log_path.read_text(errors="replace") if agent else "",
    }
    assert "DEBUG" in logs["agent"] or "debug" in logs["agent"].lower()
    assert "GET /api/pod/proxy-stream" in logs["portal"]  # the access log is on: it was tested
    assert_no_secrets(logs, secrets, patterns=[UNREDACTED])
    never_in_responses = ("api key", "stream secret", "password", "rtsp password")
    assert any(r.status_code == 200 and "proxy-stream" in str(r.url) for r in responses)
    for r in responses:
        blob = r.text + repr(dict(r.headers))
        for what in never_in_responses:
            assert secrets[what] not in blob, (what, r.request.url.path, r.status_code)
        url = str(r.request.url)
        if "/api/footage-token" not in url and "/s/" not in url:  # its issue, its own page
            assert footage["footage token"] not in blob, r.request.url.path
        # (the sign-in page echoes its own ``next``: the requester's URL, not a leak)
        if r.request.method != "POST" and r.request.url.path.split("/")[1] not in ("s", "login"):
            assert footage["share secret"] not in blob, r.request.url.path
        if "/auth/login" not in url and "/stream-token" not in url:
            assert session not in blob, r.request.url.path  # only the login answer has it
            if stream_token not in url:  # a playlist hands the viewer's own token on
                assert stream_token not in blob, r.request.url.path
