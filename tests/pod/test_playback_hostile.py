"""Hostile input on the POD's playback routes, over real HTTP: the real app behind uvicorn (with
the agent's own server settings) on loopback, a real SQLite index and byte-level recordings.
Whatever the query (NaN, inf, huge, negative, non-numeric, very long or repeated values), the
path (encoded slashes, ``..``, NUL, very long ids) or the token (another POD's, another
camera's, a live one, a forged or truncated one): a JSON ``{"error", "detail"}`` refusal with
its documented status — never a 500, a traceback or the token echoed back."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from platebridge.pod.agent import _server
from platebridge.pod.http import create_app
from platebridge.pod.playback_routes import MAX_EXPORTS, ExportSlots
from platebridge.pod.recording.recorder import Recording
from platebridge.pod.supervisor import CameraState
from tests.pod.test_http_routes import make_config
from tests.pod.test_playback_plan import T0, index_row, recording
from tests.support.builders import CAMERA_ID, footage_token, stream_token
from tests.support.procs import free_port

CAM = CAMERA_ID
DAY = (int(T0) - 3600, int(T0) + 86400)
ROUTES = ("", "/media", "/export", "/vod.m3u8")
#: Every status a playback route may answer with (200 with data; 429: exports are kept busy
#: here so no ffmpeg starts; 503 only for recording_off / export_failed, not expected here).
STATUSES = {200, 400, 401, 403, 404, 429}
ERRORS = {
    "bad_request",
    "token_missing",
    "token_malformed",
    "token_bad_signature",
    "token_expired",
    "token_not_yet_valid",
    "wrong_pod",
    "wrong_scope",
    "wrong_camera",
    "out_of_range",
    "not_found",
    "no_recording",
    "busy",
}
HOSTILE = [
    "nan", "NaN", "-nan", "inf", "-inf", "Infinity", "1e309", "-1e309", "1e308", "2e12",
    "-1", "-0.0001", "0", "0x10", "1_0", " ", "", "abc", "1,5", "1.2.3", "١٢٣", "\x00",
    "%00", "9" * 400, "1" + "0" * 5000, "." * 3000, "'; DROP TABLE files;--", "../../etc/passwd",
    str(T0), str(T0 + 5), str(T0 + 0.5), str(T0 + 86400 * 8), "5", "60", "61", "init",
    "fragments", "INIT", "None", "null", "true", "[]", "{}",
]  # fmt: skip
KEYS = ["from", "to", "start", "duration", "part"]
TRACE_MARKERS = ("Traceback", 'File "', "Internal Server Error", "Exception")


class Pod:
    def __init__(self, url: str, app: Any, port: int) -> None:
        self.url, self.app, self.port = url, app, port


@contextlib.contextmanager
def serve_pod(tmp: Path, **config_fields: Any) -> Iterator[Pod]:
    """The POD's HTTP server (the agent's uvicorn settings, a thread of this process) with
    20 s recorded at T0 (two files) and 10 s at T0 + 60 for ``gate-camera-1``; exports kept
    "busy" (429 before any ffmpeg starts)."""
    port = free_port()
    config = make_config(
        tmp, recording_dir=str(tmp / "rec"), listen_port=port, **config_fields
    ).model_copy(update={"listen_host": "127.0.0.1"})
    rec = Recording(config)
    assert rec.index is not None
    day = tmp / "rec" / CAM / "2026-01-01"
    day.mkdir(parents=True)
    for name, start in (("000000.mp4", T0), ("000010.mp4", T0 + 10), ("000100.mp4", T0 + 60)):
        path = day / name
        path.write_bytes(recording(10, media0=0.0, wall0=start))
        rec.index.put(index_row(path, start))
    states = {c.camera_id: CameraState(c.camera_id, c.name) for c in config.cameras}
    app = create_app(config, states, recording=rec)
    app.state.export_slots = ExportSlots(MAX_EXPORTS)
    app.state.export_slots.used = MAX_EXPORTS
    server = _server(config, app)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    try:
        yield Pod(f"http://127.0.0.1:{port}", app, port)
    finally:
        server.should_exit = True
        thread.join(10)
        rec.close()


@pytest.fixture(scope="module")
def pod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pod]:
    with serve_pod(tmp_path_factory.mktemp("hostile")) as served:
        yield served


def tok(camera_id: str = CAM, span: tuple[int, int] = DAY, **kw: Any) -> str:
    return footage_token(camera_id, start=span[0], end=span[1], **kw)


def assert_refusal_or_ok(r: httpx.Response, token: str | None, label: object) -> None:
    assert r.status_code in STATUSES, (label, r.status_code, r.text[:300])
    text = r.text if not r.headers.get("content-type", "").startswith("video/") else ""
    for marker in TRACE_MARKERS:
        assert marker not in text, (label, text[:300])
    if token and len(token) >= 8 and r.status_code >= 400:  # (a VOD playlist hands it on)
        assert token not in text and token not in repr(dict(r.headers)), label
    if r.status_code >= 400:
        assert r.headers["content-type"].startswith("application/json"), (label, r.text[:200])
        body = r.json()
        assert set(body) == {"error", "detail"}, (label, body)
        assert body["error"] in ERRORS, (label, body)
        assert isinstance(body["detail"], str) and len(body["detail"]) < 300, (label, body)


values = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(max_size=40),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats(min_value=T0 - 100, max_value=T0 + 100).map(str),
)
#: A query as a list of pairs: keys may repeat, and come in any order.
queries = st.lists(st.tuples(st.sampled_from(KEYS), values), max_size=8)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(route=st.sampled_from(ROUTES), query=queries)
def test_any_query_gets_a_json_answer(pod: Pod, route: str, query: list[tuple[str, str]]) -> None:
    token = tok()
    with httpx.Client(base_url=pod.url, timeout=10) as c:
        r = c.get(f"/recordings/{CAM}{route}", params=[*query, ("token", token)])
    assert_refusal_or_ok(r, token, (route, query))


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(
    "query",
    [
        {"from": "nan", "to": "inf", "start": "nan", "duration": "nan"},
        {"from": "-inf", "to": "inf", "start": "-inf", "duration": "inf"},
        {"from": "1e309", "to": "1e310", "start": "1e309", "duration": "1e309"},
        {"from": str(2**40), "to": str(2**40 + 10), "start": str(2**40), "duration": "10"},
        {"from": "-10", "to": "-5", "start": "-10", "duration": "-5"},
        {"from": "x" * 8000, "to": "y" * 8000, "start": "z" * 8000, "duration": "9" * 8000},
        {"from": str(T0 + 10), "to": str(T0), "start": str(T0), "duration": "0"},
        {"from": "", "to": "", "start": "", "duration": "", "part": ""},
        {"part": "../../index.sqlite3", "start": str(T0)},
    ],
)
def test_hostile_times_are_400(pod: Pod, route: str, query: dict[str, str]) -> None:
    token = tok()
    r = httpx.get(f"{pod.url}/recordings/{CAM}{route}", params={**query, "token": token})
    assert_refusal_or_ok(r, token, query)
    assert (r.status_code, r.json()["error"]) == (400, "bad_request"), r.text


@pytest.mark.parametrize("route", ROUTES)
def test_repeated_params_take_one_value_consistently(pod: Pod, route: str) -> None:
    """``from=<bad>&from=<good>``: one value is used (the last, as the framework's own params),
    the answer is a 200 or a clean refusal — not a mix of both values."""
    token = tok()
    good = [("from", str(T0)), ("to", str(T0 + 10)), ("start", str(T0)), ("duration", "5")]
    bad_first = [(k, "nan") for k, _ in good] + good + [("token", token)]
    good_first = good + [(k, "nan") for k, _ in good] + [("token", token)]
    with httpx.Client(base_url=pod.url, timeout=10) as c:
        ok = c.get(f"/recordings/{CAM}{route}", params=bad_first)
        refused = c.get(f"/recordings/{CAM}{route}", params=good_first)
        twice = [*good, ("token", "x"), ("token", token)]
        two_tokens = c.get(f"/recordings/{CAM}{route}", params=twice)
    assert_refusal_or_ok(ok, token, "bad first")
    assert_refusal_or_ok(refused, token, "good first")
    assert_refusal_or_ok(two_tokens, token, "two tokens")
    assert ok.status_code == (429 if route == "/export" else 200), ok.text[:200]
    assert (refused.status_code, refused.json()["error"]) == (400, "bad_request")
    assert two_tokens.status_code == ok.status_code


def raw_get(url: str, target: str) -> tuple[int, dict[str, str], bytes]:
    """A GET of ``target`` exactly as given (no client-side normalisation of ``..`` or ``%2F``)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(f"GET {target} HTTP/1.1\r\nHost: pod\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


@pytest.mark.parametrize(
    "camera",
    [
        "..%2F..%2Fetc%2Fpasswd",
        "%2e%2e%2f%2e%2e%2findex.sqlite3",
        "..%5C..%5Cindex.sqlite3",
        "gate-camera-1%2F..%2Fside",
        "gate-camera-1%00",
        "%00",
        "..",
        "%2E%2E",
        "gate-camera-1%20",
        "GATE-CAMERA-1",
        "c" * 4000,
        "%F0%9F%92%A9",
        "%ff%fe",
    ],
)
@pytest.mark.parametrize("route", ROUTES)
def test_hostile_camera_paths(pod: Pod, camera: str, route: str) -> None:
    """No path reaches another camera's footage or a file: the camera id is matched exactly
    against the configured cameras (404 ``not_found``), or the token's camera (403)."""
    token = tok()
    query = f"?token={token}&from={T0}&to={T0 + 10}&start={T0}&duration=5"
    status, headers, body = raw_get(pod.url, f"/recordings/{camera}{route}{query}")
    assert status in (403, 404), (camera, status, body[:200])
    assert headers["content-type"].startswith("application/json"), (camera, body[:200])
    text = body.decode("utf-8", "replace")
    assert token not in text and "Traceback" not in text
    assert b'"error"' in body and (b"not_found" in body or b"wrong_camera" in body), body


@pytest.mark.parametrize(
    "target",
    [
        f"/recordings/{CAM}/../../index.sqlite3",
        f"/recordings/{CAM}/..%2F..%2Findex.sqlite3",
        f"/recordings/{CAM}/media/..",
        f"/recordings/{CAM}/2026-01-01/000000.mp4",
        "/recordings/../recordings/" + CAM,
        "/recordings/%2e%2e/index.sqlite3",
        "/recordings//" + CAM,
        "/recordings/",
    ],
)
def test_paths_beside_the_routes_serve_no_file(pod: Pod, target: str) -> None:
    """Path tricks around the four routes: never a recorded file or the index, never a 500."""
    token = tok()
    status, headers, body = raw_get(pod.url, f"{target}?token={token}&start={T0}")
    assert status != 500 and status < 600, (target, status)
    assert not body.startswith(b"SQLite format") and b"ftyp" not in body[:16], target
    # a refusal, or (a path the server maps onto a route) that route's JSON answer
    assert headers.get("content-type", "").startswith("application/json"), (target, body)
    assert token.encode() not in body


@pytest.mark.parametrize("route", ROUTES)
def test_tokens_of_others(pod: Pod, route: str) -> None:
    q = {"from": T0, "to": T0 + 10, "start": T0, "duration": 5}
    good = tok()
    forged = good.rsplit(".", 1)[0] + "." + "A" * len(good.rsplit(".", 1)[1])
    cases: list[tuple[str, int, str]] = [
        (tok(pod_id="other-pod"), 403, "wrong_pod"),
        (tok("side"), 403, "wrong_camera"),
        (tok("no-such-camera"), 403, "wrong_camera"),
        (stream_token(), 403, "wrong_scope"),
        (tok(secret="another-pods-secret-0123456789"), 401, "token_bad_signature"),
        (tok(exp_in=-3600), 401, "token_expired"),
        (forged, 401, "token_bad_signature"),
        (good[: len(good) // 2], 401, "token_malformed"),
        (good + "." + good, 401, "token_malformed"),
        ("x" * 2000, 401, "token_malformed"),
        (tok(span=(int(T0) + 1, int(T0) + 100)), 403, "out_of_range"),
    ]
    with httpx.Client(base_url=pod.url, timeout=10) as c:
        for token, status, error in cases:
            r = c.get(f"/recordings/{CAM}{route}", params={**q, "token": token})
            assert_refusal_or_ok(r, token, error)
            assert (r.status_code, r.json()["error"]) == (status, error), (error, r.text)


@pytest.mark.parametrize("route", ROUTES)
def test_side_camera_token_gets_nothing_of_the_gate_camera(pod: Pod, route: str) -> None:
    """A valid token for the POD's other camera, on every route of this one: 403, no bytes."""
    r = httpx.get(
        f"{pod.url}/recordings/{CAM}{route}",
        params={"from": T0, "to": T0 + 10, "start": T0, "token": tok("side")},
    )
    assert (r.status_code, r.json()["error"]) == (403, "wrong_camera")
    assert b"ftyp" not in r.content


def test_the_happy_path_still_works(pod: Pod) -> None:
    """The fixture serves footage: the refusals above are not an artefact of a broken setup."""
    r = httpx.get(
        f"{pod.url}/recordings/{CAM}/media", params={"token": tok(), "start": T0, "duration": 5}
    )
    assert r.status_code == 200 and r.headers["content-type"] == "video/mp4"
    spans = httpx.get(
        f"{pod.url}/recordings/{CAM}", params={"token": tok(), "from": T0, "to": T0 + 70}
    )
    assert spans.status_code == 200 and spans.json()["spans"][0]["kind"] == "recording"
