"""Hostile input on the portal's footage and share routes, over real HTTP: a real portal
process, a recording POD (the real POD app on uvicorn, byte-level recordings, a real index)
registered by heartbeat. Whatever the query, body, path, token or share secret — unknown, too
long, badly shaped, revoked, expired — the answer is a JSON ``{"error", "detail"}`` refusal
with its status (the ``/s/`` page: a plain page with it), never a 500 or a traceback, and no
share secret or footage token ever reaches the portal's log or an error message."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from platebridge.portal.models import ShareLink
from tests.pod.test_playback_hostile import HOSTILE, TRACE_MARKERS, Pod, serve_pod
from tests.pod.test_playback_plan import T0
from tests.portal.footage_support import add_user, create_share, footage_token
from tests.portal.streaming_support import PortalProc, heartbeat, portal_process
from tests.support.portal import SeededCompany, in_session, new_sqlite_url, seed_company

pytestmark = pytest.mark.e2e  # a real portal process (tests/conftest.py guards it)

N = int(os.environ.get("PB_FUZZ_EXAMPLES", "8"))
CAM = "gate-camera-1"
ROUTES = ("", "/media", "/export", "/vod.m3u8")
#: 409: pod offline; 413: a body past 64 KiB; 429: the POD's exports are kept busy;
#: 502/503/504: the POD's side.
STATUSES = {200, 400, 401, 403, 404, 409, 410, 413, 422, 429, 502, 503, 504}
SHARE_ROUTES = ("", "/clip.mp4", "/media")


@dataclass
class World:
    portal: PortalProc
    tenant: SeededCompany
    pod: Pod
    admin: dict[str, str]
    viewer: dict[str, str]
    seen: dict[str, str]  # secrets handed out during the tests (checked against the log)

    def online(self) -> None:
        """A heartbeat now (the test POD does not send its own)."""
        heartbeat(self.portal.url, self.tenant, "127.0.0.1", self.pod.port, (CAM, "side"))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    env = {"PLATEBRIDGE_STREAM_CONNECT_TIMEOUT": "2", "PLATEBRIDGE_STREAM_READ_TIMEOUT": "5"}
    with portal_process(new_sqlite_url(), env, log_level="info") as portal:
        tenant = seed_company(portal.db_url)
        fields = {"pod_id": tenant.pod_id, "stream_token_secret": tenant.stream_token_secret}
        with serve_pod(tmp_path_factory.mktemp("pod"), **fields) as pod:
            w = World(
                portal,
                tenant,
                pod,
                portal.login(tenant.email, tenant.password),
                add_user(portal.url, portal.db_url, tenant, "viewer"),
                {},
            )
            w.online()
            yield w


def check(r: httpx.Response, label: object, *secrets: str, page: bool = False) -> None:
    assert r.status_code in STATUSES, (label, r.status_code, r.text[:300])
    video = r.headers.get("content-type", "").startswith("video/")
    text = "" if video else r.text
    for marker in TRACE_MARKERS:
        assert marker not in text, (label, text[:300])
    if r.status_code >= 400:
        for secret in secrets:
            assert not secret or secret not in text + repr(dict(r.headers)), label
        if page:
            assert r.headers["content-type"].startswith(("text/html", "application/json")), label
        else:
            assert r.headers["content-type"].startswith("application/json"), (label, text[:200])
            body = r.json()
            assert set(body) == {"error", "detail"}, (label, body)
            assert isinstance(body["detail"], (str, list)), (label, body)


def test_the_happy_path_works(world: World) -> None:
    """Spans and media through the portal from the recording POD: the refusals below are not
    an artefact of a broken setup."""
    world.online()
    q = {"camera_id": CAM, "from": T0, "to": T0 + 70}
    r = httpx.get(
        f"{world.portal.url}/api/footage/{world.tenant.pod_id}",
        params=q,
        headers=world.admin,
        timeout=15,
    )
    assert r.status_code == 200, r.text
    assert r.json()["spans"][0]["kind"] == "recording"
    media = httpx.get(
        f"{world.portal.url}/api/footage/{world.tenant.pod_id}/media",
        params={"camera_id": CAM, "start": T0, "duration": 3},
        headers=world.admin,
        timeout=15,
    )
    assert media.status_code == 200 and media.headers["content-type"] == "video/mp4"
    assert float(media.headers["x-platebridge-media-start"]) == T0


values = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(max_size=40),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(min_value=T0 - 100, max_value=T0 + 100).map(str),
)
keys = st.sampled_from(["camera_id", "from", "to", "start", "duration", "part", "token"])


@settings(max_examples=max(60, N * 8), deadline=None, suppress_health_check=list(HealthCheck))
@given(
    route=st.sampled_from(ROUTES),
    query=st.lists(st.tuples(keys, values), max_size=8),
    signed_in=st.booleans(),
)
def test_footage_relay_any_query(
    world: World, route: str, query: list[tuple[str, str]], signed_in: bool
) -> None:
    params = [("camera_id", CAM), *query]
    headers = world.admin if signed_in else {}
    r = httpx.get(
        f"{world.portal.url}/api/footage/{world.tenant.pod_id}{route}",
        params=params,
        headers=headers,
        timeout=20,
    )
    check(r, (route, query), *(v for k, v in query if k == "token" and len(v) >= 8))


@pytest.mark.parametrize("route", ROUTES)
def test_footage_relay_hostile_times_are_400(world: World, route: str) -> None:
    world.online()
    for q in (
        {"from": "nan", "to": "inf", "start": "nan", "duration": "nan"},
        {"from": "-inf", "to": "1e309", "start": "-inf", "duration": "inf"},
        {"from": "-10", "to": "-5", "start": "-10", "duration": "-5"},
        {"from": str(T0 + 10), "to": str(T0), "start": "abc", "duration": "0"},
        {"from": "", "to": "", "start": "", "duration": ""},
        {"from": "9" * 30, "to": "9" * 31, "start": "9" * 30, "duration": "9" * 30},
    ):
        r = httpx.get(
            f"{world.portal.url}/api/footage/{world.tenant.pod_id}{route}",
            params={"camera_id": CAM, **q},
            headers=world.admin,
            timeout=15,
        )
        check(r, q)
        assert r.status_code == 400 and r.json()["error"] == "bad_request", (q, r.text)
        long = {"camera_id": CAM, **{k: "1" * 5000 for k in q}}  # past the routes' max_length
        r = httpx.get(
            f"{world.portal.url}/api/footage/{world.tenant.pod_id}{route}",
            params=long,
            headers=world.admin,
            timeout=15,
        )
        check(r, "long")
        assert r.status_code in (400, 422)


def test_footage_tokens_of_others_and_live_tokens(world: World) -> None:
    world.online()
    base, pod = world.portal.url, world.tenant.pod_id
    r = footage_token(base, world.admin, pod, CAM, T0, T0 + 30)
    assert r.status_code == 200, r.text
    token = r.json()["token"]
    world.seen["footage token"] = token
    world.seen["footage token signature"] = token.rsplit(".", 1)[1]
    live = httpx.post(
        f"{base}/api/pod/stream-token",
        headers=world.admin,
        json={"pod_id": pod, "camera_id": CAM},
        timeout=15,
    )
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"camera_id": "side", "token": token, "start": T0}, 401, "invalid_stream_token"),
        ({"camera_id": CAM, "token": token, "start": T0 + 100}, 403, "out_of_range"),
        ({"camera_id": CAM, "token": token[:-3] + "AAA", "start": T0}, 401, ""),
        ({"camera_id": CAM, "token": token + "." + token, "start": T0}, 401, ""),
        ({"camera_id": CAM, "token": "x" * 2048, "start": T0}, 401, ""),
    ]
    if live.status_code == 200:  # a live token on footage
        cases.append(({"camera_id": CAM, "token": live.json()["token"], "start": T0}, 403, ""))
    with httpx.Client(timeout=15) as c:
        for q, status, error in cases:
            r = c.get(f"{base}/api/footage/{pod}/media", params={**q, "duration": 2})
            check(r, q, token)
            assert r.status_code == status, (q, r.text)
            assert not error or r.json()["error"] == error, (q, r.text)
        other = c.get(
            f"{base}/api/footage/other-pod/media",
            params={"camera_id": CAM, "token": token, "start": T0},
        )
        check(other, "other pod", token)
        assert other.status_code in (401, 403, 404)
        ok = c.get(
            f"{base}/api/footage/{pod}/media",
            params={"camera_id": CAM, "token": token, "start": T0, "duration": 2},
        )
        assert ok.status_code == 200, ok.text
        viewer = c.get(
            f"{base}/api/footage/{pod}",
            params={"camera_id": CAM, "from": T0, "to": T0 + 9},
            headers=world.viewer,
        )
        check(viewer, "viewer")
        assert viewer.status_code == 403


RAW_BODIES = [
    b'{"pod_id": "P", "camera_id": "gate-camera-1", "from": NaN, "to": Infinity}',
    b'{"pod_id": "P", "camera_id": "gate-camera-1", "from": -Infinity, "to": 1e999}',
    b'{"pod_id": "P", "camera_id": "gate-camera-1", "from": 1e308, "to": 1.7e308}',
    b'{"pod_id": "P", "camera_id": "gate-camera-1", "from": -5, "to": -1}',
    b'{"pod_id": "P", "camera_id": "gate-camera-1", "from": 1767225610, "to": 1767225600}',
    b'{"pod_id": "P", "camera_id": "gate-camera-1", "from": 0, "to": 99999999999999999999999}',
    b'{"pod_id": "P", "camera_id": "gate-camera-1", "from": "1767225600", "to": "x"}',
    b'{"pod_id": "P", "camera_id": "gate-camera-1", "from": [], "to": {}}',
    b'{"pod_id": "P", "camera_id": "gate-camera-1", "from": true, "to": null}',
    b'{"pod_id": "P", "camera_id": "' + b"c" * 5000 + b'", "from": 1, "to": 2}',
    b'{"pod_id": "../../x", "camera_id": "..%2F", "from": 1767225600, "to": 1767225610}',
    b'{"pod_id": "P", "camera_id": "gate-camera-1", "from": 1, "to": 2, "extra": 1}',
    b'{"pod_id": "P", "camera_id": "gate-camera-1", "from": 1, "to": 2, "from": NaN}',
    b'{"pod_id": "P", "camera_id": "gate-camera-1", "from": 1767225600, "to": 1767225610,'
    b' "expires_in_hours": 1e999}',
    b'{"pod_id": "P", "camera_id": "gate-camera-1", "from": 1767225600, "to": 1767225610,'
    b' "expires_in_hours": 0}',
    b'{"pod_id": "P", "camera_id": "gate-camera-1", "from": 1767225600, "to": 1767225610,'
    b' "expires_in_hours": 169}',
    b'{"pod_id": "P", "camera_id": "gate-camera-1", "from": 1767225600, "to": 1767227401,'
    b' "expires_in_hours": 1}',
    b'{"pod_id": "P", "camera_id": "gate-camera-1", "from": 1767225600, "to": 1767225610,'
    b' "expires_in_hours": "1; DROP TABLE share_links"}',
    b"[]",
    b"",
    b"{",
    b'"' + b"a" * 100000 + b'"',
]


@pytest.mark.parametrize("path", ["/api/footage-token", "/api/shares"])
def test_hostile_bodies(world: World, path: str) -> None:
    with httpx.Client(timeout=15) as c:
        for raw in RAW_BODIES:
            body = raw.replace(b'"P"', json.dumps(world.tenant.pod_id).encode())
            if path == "/api/footage-token":
                if b"expires_in_hours" in body and b"1767227401" in body:
                    continue  # 1801 s: too long for a clip, a fine range for a token
                body = body.replace(b', "expires_in_hours": 1}', b"}")
            r = c.post(
                f"{world.portal.url}{path}",
                content=body,
                headers={**world.admin, "Content-Type": "application/json"},
            )
            check(r, (path, raw[:80]))
            assert 400 <= r.status_code < 500, (path, raw[:80], r.status_code, r.text[:200])


def raw_get(
    url: str, target: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """A GET of ``target`` exactly as given (no client-side normalisation of ``..``/``%2F``)."""
    host, port = url.removeprefix("http://").split(":")
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    with socket.create_connection((host, int(port)), timeout=15) as s:
        s.sendall(
            f"GET {target} HTTP/1.1\r\nHost: portal\r\n{extra}Connection: close\r\n\r\n".encode()
        )
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def _share(world: World, **kw: Any) -> tuple[str, str]:
    world.online()
    r = create_share(world.portal.url, world.admin, world.tenant.pod_id, CAM, T0, T0 + 15, **kw)
    assert r.status_code == 201, r.text
    secret = r.json()["url"].rsplit("/s/", 1)[1]
    world.seen[f"share secret {len(world.seen)}"] = secret
    world.seen[f"share secret random part {len(world.seen)}"] = secret.removeprefix("pbs_")
    return r.json()["id"], secret


BAD_SECRETS = [
    "pbs_" + "A" * 43,  # the right shape, unknown
    "pbs_" + "A" * 10,
    "pbs_" + "A" * 95,
    "x" * 100,
    "x" * 101,  # past the route's max_length
    "p" * 5000,
    "pbs_%2F..%2F..%2Fapi%2Fshares",
    "..",
    "%2e%2e",
    "pbs_AAAA%00",
    "%F0%9F%92%A9",
    "%ff",
    "PBS_" + "A" * 43,
]


@pytest.mark.parametrize("route", SHARE_ROUTES)
def test_bad_share_secrets(world: World, route: str) -> None:
    for secret in BAD_SECRETS:
        status, headers, body = raw_get(world.portal.url, f"/s/{secret}{route}?start=x")
        label = (secret[:40], route, status, body[:200])
        assert status in (400, 404, 410, 422), label
        text = body.decode("utf-8", "replace")
        assert "Traceback" not in text and 'File "' not in text, label
        assert secret not in text or len(secret) < 8, label
        ctype = headers.get("content-type", "")
        if route:  # clip.mp4 and media: JSON errors
            assert ctype.startswith("application/json"), label
            assert set(json.loads(body)) == {"error", "detail"}, label
        else:
            assert ctype.startswith(("text/html", "application/json")), label


@pytest.mark.parametrize("route", SHARE_ROUTES)
def test_revoked_and_expired_shares(world: World, route: str) -> None:
    revoked_id, revoked = _share(world)
    r = httpx.delete(f"{world.portal.url}/api/shares/{revoked_id}", headers=world.admin)
    assert r.status_code == 200, r.text
    expired_id, expired = _share(world)
    past = datetime.fromtimestamp(time.time() - 60, UTC)

    async def expire(session: Any) -> None:
        await session.execute(
            update(ShareLink).where(ShareLink.id == uuid.UUID(expired_id)).values(expires_at=past)
        )

    asyncio.run(in_session(world.portal.db_url, expire))
    for secret in (revoked, expired):
        r = httpx.get(f"{world.portal.url}/s/{secret}{route}", params={"start": T0}, timeout=15)
        check(r, (route, "gone"), secret, page=not route)
        assert r.status_code == 410, (route, r.status_code, r.text[:200])


def test_live_share_media_with_hostile_params(world: World) -> None:
    _, secret = _share(world)
    with httpx.Client(timeout=20) as c:
        for q in (
            {"start": "nan"},
            {"start": "inf"},
            {"start": "-1e309"},
            {"start": "9" * 30},
            {"start": "abc"},
            {"duration": "nan"},
            {"duration": "-5"},
            {"duration": "1e9"},
            {"start": str(T0 - 86400), "duration": "60"},
            {"start": str(T0 + 86400)},
            {"start": "", "duration": ""},
        ):
            r = c.get(f"{world.portal.url}/s/{secret}/media", params=q)
            check(r, q, secret)
            assert r.status_code in (200, 400), (q, r.status_code, r.text[:200])
            if r.status_code == 200:  # clamped to the clip
                start = float(r.headers["x-platebridge-media-start"])
                assert T0 - 2 <= start <= T0 + 15, (q, start)
        repeated = [("start", "nan"), ("start", str(T0 + 2)), ("duration", "x"), ("duration", "3")]
        r = c.get(f"{world.portal.url}/s/{secret}/media", params=repeated)
        check(r, "repeated", secret)


def test_no_share_secret_or_footage_token_in_the_log(world: World) -> None:
    """Runs last in this module: every secret handed out above, in any form, is absent from
    the portal's log (access log on), while the requests themselves were logged."""
    _share(world)  # at least one, when run alone
    secret = next(v for k, v in world.seen.items() if k.startswith("share secret "))
    for target in (f"/s/{secret}", f"/login?next=%2Fs%2F{secret}", f"/s/{secret}/media?start=x"):
        raw_get(world.portal.url, target)
    time.sleep(0.5)  # the access log line is written after the response
    log = world.portal.output()
    assert "GET /s/pbs_***" in log and "/api/footage/" in log
    for what, value in world.seen.items():
        assert value not in log, f"{what} in the portal log"


@pytest.mark.parametrize("route", ROUTES)
def test_hostile_pod_paths(world: World, route: str) -> None:
    """Path tricks on ``/api/footage/{pod_id}``: another route or pod is never reached."""
    for pod in ("..%2F..%2Fapi%2Fshares", "%2e%2e", "..", "%00", "p" * 65, "p" * 5000,
                f"{world.tenant.pod_id}%2F..%2Fother", "%F0%9F%92%A9", "%ff"):  # fmt: skip
        target = f"/api/footage/{pod}{route}?camera_id={CAM}&from={T0}&to={T0 + 9}&start={T0}"
        status, headers, body = raw_get(world.portal.url, target, world.admin)
        label = (pod[:40], route, status, body[:200])
        assert status in (400, 404, 422), label
        assert headers.get("content-type", "").startswith("application/json"), label
        assert set(json.loads(body)) == {"error", "detail"}, label
