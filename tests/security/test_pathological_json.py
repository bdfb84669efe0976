"""Pathological JSON at every endpoint that reads a body before authentication (issue 11).

Against a real portal process on each backend: deep nesting, huge numbers, NaN, invalid
UTF-8, BOMs, lone surrogates, huge and empty bodies, wrong content types — each is answered
4xx with the JSON error body (the HTML login form: its 4xx page), never 500; a storm of them
from one source is throttled (429) and leaves no traceback in the portal's output.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.portal import SeededCompany, run_portal, seed_company

pytestmark = pytest.mark.e2e  # a real portal process (tests/conftest.py guards it)

HEARTBEAT = "/api/pod/heartbeat"
LOGIN = "/api/auth/login"
FORM_LOGIN = "/login"
#: Routes that need a user but whose body FastAPI parses before the user is checked.
SIGNED_IN_BODIES = (("POST", "/api/pod/stream-token"), ("PATCH", "/api/pods/main-gate-pod"))
#: Key-shaped (``pbk_`` + 43 urlsafe characters) but unknown: passes the shape check.
FAKE_KEY = "pbk_" + "Q" * 43
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
LOGIN_DOC = '{"pod_id": "x", "email": "a@b.c", "password": "p"}'


def _deep(opener: bytes, closer: bytes, depth: int, inner: bytes = b"1") -> bytes:
    return opener * depth + inner + closer * depth


#: name -> (body, content type). Every one must be refused with a 4xx.
BODIES: dict[str, tuple[bytes, str]] = {
    "deep-arrays": (_deep(b"[", b"]", 1000), JSON),
    "deep-objects": (_deep(b'{"a":', b"}", 1000), JSON),
    "deep-mixed": (_deep(b'[{"a":', b"}]", 600), JSON),
    "deep-unclosed": (b"[" * 20_000, JSON),
    "deep-with-comment": (b'{"pod_id": "x", # "\n "c": ' + _deep(b"[", b"]", 900) + b"}", JSON),
    "deep-in-field": (b'{"pod_id": "x", "cameras": ' + _deep(b"[", b"]", 2000) + b"}", JSON),
    "deep-bare-quote-comment": (b"#\n" + b'"' + b'\\"' * 20_000, JSON),
    "million-digit-number": (b'{"pod_id": "x", "stream_port": ' + b"9" * 10**6 + b"}", JSON),
    "long-number": (b'{"pod_id": "x", "stream_port": ' + b"9" * 5000 + b"} # c", JSON),
    "long-fraction": (b'{"email": 0.' + b"1" * 5000 + b', "password": "p"}', JSON),
    "1e999": (b'{"pod_id": "x", "stream_port": 1e999, "email": 1e999}', JSON),
    "-1e999": (b'{"pod_id": "x", "stream_port": -1e999} # c', JSON),
    "nan": (b'{"pod_id": "x", "stream_port": NaN, "email": NaN, "password": NaN}', JSON),
    "infinity": (b'{"pod_id": "x", "stream_port": -Infinity} # c', JSON),
    "huge-string": (b'{"pod_id": "' + b"x" * 60_000 + b'", "email": "a"}', JSON),
    "duplicate-keys-at-depth": (
        b'{"pod_id": "x", "cameras": [{"camera_id": "c", "camera_id": "d", "name": "n",'
        b' "name": {"a": 1, "a": [1, 2]}}], "cameras": null, "email": "a", "email": "b"}',
        JSON,
    ),
    "invalid-utf8": (b'{"pod_id": "\xff\xfe\xc3(", "email": "\xed\xa0\x80@x.y"}', JSON),
    "utf16-bom": ('{"pod_id": "x", "email": "a@b.c", "password": "p"}'.encode("utf-16"), JSON),
    "utf16-no-bom": (
        '{"pod_id": "x", "email": "a@b.c", "password": "p"}'.encode("utf-16-le"),
        JSON,
    ),
    "utf8-bom": (b'\xef\xbb\xbf{"pod_id": "x", "email": "a@b.c", "password": "p"}', JSON),
    "lone-surrogate": (
        b'{"pod_id": "x\\ud800", "email": "\\udc00@b.c", "password": "\\ud800"}',
        JSON,
    ),
    "lone-surrogate-stored": (
        b'{"pod_id": "main-gate-pod", "ip_address": "10.0.0.5", "firmware_version": "\\ud800",'
        b' "cameras": [{"camera_id": "c1", "name": "gate \\udbff"}]}',
        JSON,
    ),
    "nul-bytes": (b'{"pod_id": "x\x00", "email": "a\x00", "password": "p"}', JSON),
    "one-megabyte": (b'{"pod_id": "' + b"x" * (1 << 20) + b'"}', JSON),
    "empty": (b"", JSON),
    "whitespace": (b" \n\t ", JSON),
    "not-an-object": (b"[1, 2, 3]", JSON),
    "wrong-content-type-deep": (_deep(b"[", b"]", 1000), "text/plain"),
    "form-encoded-deep": (_deep(b"[", b"]", 1000), "application/x-www-form-urlencoded"),
    "form-encoded": (b"email=a%40b.c&password=p&pod_id=x", "application/x-www-form-urlencoded"),
    "many-form-fields": (
        b"&".join(b"f%d=1" % i for i in range(5000)),
        "application/x-www-form-urlencoded",
    ),
    "multipart": (b"--x\r\n\r\n" + _deep(b"[", b"]", 1000), "multipart/form-data; boundary=x"),
}


@dataclass
class Portal:
    url: str
    log: Path
    company: SeededCompany

    def tracebacks(self) -> int:
        return self.log.read_text(errors="replace").count("Traceback")


@pytest.fixture(scope="module")
def portal(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    log_dir = Path(tmp_path_factory.mktemp("pathological-json"))
    with run_portal(db_url, log_dir=log_dir) as url:
        yield Portal(url, log_dir / "portal.log", seed_company(db_url))


def client_from(source: str) -> httpx.Client:
    """A client whose connections come from ``source`` (any 127.0.0.0/8 address); a fresh
    connection per request (a refusal may close the connection it came on)."""
    transport = httpx.HTTPTransport(
        local_address=source, limits=httpx.Limits(max_keepalive_connections=0)
    )
    return httpx.Client(transport=transport, timeout=30)


def _post(
    c: httpx.Client,
    url: str,
    body: bytes,
    ctype: str,
    auth: str | None = None,
    method: str = "POST",
) -> httpx.Response:
    headers = {"Content-Type": ctype}
    if auth:
        headers["Authorization"] = f"Bearer {auth}"
    return c.request(method, url, content=body, headers=headers)


def assert_json_4xx(r: httpx.Response, what: str) -> None:
    assert 400 <= r.status_code < 500, f"{what}: {r.status_code} {r.text[:300]}"
    body = r.json()
    assert set(body) == {"error", "detail"}, f"{what}: {body}"
    assert body["error"] != "internal_error"


def test_every_pre_auth_endpoint_answers_4xx(portal: Portal) -> None:
    """Each body to each endpoint, from its own source (no throttle in the way): 4xx JSON."""
    real_key = portal.company.api_key
    for i, (name, (body, ctype)) in enumerate(BODIES.items()):
        with client_from(f"127.0.5.{i + 1}") as c:
            for target, auth in (
                (HEARTBEAT, FAKE_KEY),  # key-shaped, unknown
                (HEARTBEAT, real_key),  # authenticated: still 4xx, never 500
                (HEARTBEAT, None),
                (LOGIN, FAKE_KEY),
                (LOGIN, None),
            ):
                r = _post(c, portal.url + target, body, ctype, auth)
                assert_json_4xx(r, f"{name} -> {target} ({'key' if auth else 'no key'})")
                assert real_key not in r.text
            for method, path in SIGNED_IN_BODIES:  # no user: 4xx, parsed or not
                r = _post(c, portal.url + path, body, ctype, FAKE_KEY, method)
                assert_json_4xx(r, f"{name} -> {method} {path}")
            r = _post(c, portal.url + FORM_LOGIN, body, ctype)
            assert 400 <= r.status_code < 500, f"{name} -> {FORM_LOGIN}: {r.status_code}"
    assert portal.tracebacks() == 0, portal.log.read_text(errors="replace")[-4000:]


def test_malformed_bodies_count_toward_the_source_throttle(portal: Portal) -> None:
    """A malformed body with an unknown key fails like a wrong key: the source is throttled
    before its bodies are parsed; another source is unaffected."""
    bad = [body for body, ctype in BODIES.values() if ctype == JSON and len(body) < 64_000]
    with client_from("127.0.6.1") as scanner, client_from("127.0.6.2") as pod:
        statuses = [
            _post(scanner, portal.url + HEARTBEAT, bad[i % len(bad)], JSON, FAKE_KEY)
            for i in range(200)
        ]
        codes = {r.status_code for r in statuses}
        assert all(400 <= s < 500 for s in codes), codes
        assert statuses[-1].status_code == 429, statuses[-1].text
        assert statuses[-1].json()["error"] == "too_many_requests"
        assert int(statuses[-1].headers["retry-after"]) >= 1
        # The real POD elsewhere keeps heartbeating.
        ok = {"pod_id": portal.company.pod_id, "ip_address": "10.0.0.5", "cameras": []}
        assert pod.post(portal.url + HEARTBEAT, headers=portal.company.pod_auth, json=ok).is_success
    with client_from("127.0.6.3") as guesser:
        statuses = [_post(guesser, portal.url + LOGIN, bad[i % len(bad)], JSON) for i in range(200)]
        assert all(400 <= r.status_code < 500 for r in statuses)
        assert statuses[-1].status_code == 429, statuses[-1].text
        assert statuses[-1].json()["error"] == "too_many_requests"
    with client_from("127.0.6.4") as form_guesser:  # the HTML form: refused forms count too
        statuses = [
            _post(form_guesser, portal.url + FORM_LOGIN, bad[i % len(bad)], ctype)
            for i in range(100)
            for ctype in (JSON, FORM)
        ]
        assert all(400 <= r.status_code < 500 for r in statuses)
        assert statuses[-1].status_code == 429 and "retry-after" in statuses[-1].headers
        assert "too many failed sign-ins" in statuses[-1].text
    assert portal.tracebacks() == 0, portal.log.read_text(errors="replace")[-4000:]
