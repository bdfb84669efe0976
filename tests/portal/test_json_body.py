"""The JSON body screen (portal/json_body.py), the tolerant heartbeat parser behind it, the
throttle's malformed sign-in counter and the rate-limited 500 logging. Pure, no processes."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from platebridge.portal.errors import ApiError, CatchUnexpected, TracebackLimiter
from platebridge.portal.json_body import MAX_DEPTH, MAX_DIGITS, check
from platebridge.portal.services.heartbeat_body import (
    parse_heartbeat,
    parse_json_body,
    strip_hash_comments,
)
from platebridge.portal.throttle import Throttle, ThrottleLimits

HEARTBEAT = {
    "pod_id": "main-gate-pod",
    "ip_address": "192.168.1.100",
    "firmware_version": "1.2.3",
    "stream_port": 8000,
    "cameras": [
        {"camera_id": f"cam-{i}", "name": f"Gate {i}", "rtsp_url": f"rtsp://10.0.0.{i}:554/s"}
        for i in range(64)
    ],
}


def refused(body: bytes) -> str:
    with pytest.raises(ApiError) as caught:
        check(body)
    assert caught.value.status == 422 and caught.value.code == "invalid_json"
    return caught.value.message


def nested(depth: int, opener: bytes = b"[", closer: bytes = b"]") -> bytes:
    return opener * depth + b"1" + closer * depth


# --- what passes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        json.dumps(HEARTBEAT).encode(),
        json.dumps(HEARTBEAT, indent=2, ensure_ascii=False).encode(),
        b"",
        b'{"name": "Caf\xc3\xa9 \\u00e9 \\ud83d\\ude00 \\\\ud800"}',  # a pair; an escaped backslash
        b'{"s": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[{{{{{{{{{{{{{{{{{{{{{{{{{{{"}',
        b'{"s": "\\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\"", "t": "\\\\"}',
        b'{"n": "NaN", "i": "-Infinity", "e": "1e999", "d": "' + b"9" * 500 + b'"}',
        b'{"n": ' + b"9" * MAX_DIGITS + b", " + b'"f": 1.' + b"5" * MAX_DIGITS + b"}",
        b'{"big": 1e308, "small": 1e-999, "neg": -1.7e308, "E": 2E+10}',
        nested(MAX_DEPTH),
        nested(MAX_DEPTH // 2, b'{"a": [', b"]}"),
        b"[]" * 5000,  # wide, not deep
        b"]]]]" + b"[" * 10,  # an unmatched closer: no parser reads further
        b'{"pod_id": "x" # the POD\'s "main" id [\n}',  # a comment (checked again once stripped)
    ],
)
def test_plain_and_borderline_json_passes(body: bytes) -> None:
    check(body)


# --- what is refused ---------------------------------------------------------------------------


def test_deep_nesting_is_refused_whatever_the_brackets() -> None:
    for body in (
        nested(MAX_DEPTH + 1),
        nested(MAX_DEPTH + 1, b"{", b"}"),
        nested(1000, b'{"a": [', b"]}"),
        b"[" * 60_000,  # never closed
        b'{"s": "x\\"", "a": ' + nested(40) + b"}",  # an escaped quote does not hide them
        b'"\\\\"' + nested(40),  # an escaped backslash ends the string
        b'{"a":' * (MAX_DEPTH + 1) + b"1",
    ):
        assert f"deeper than {MAX_DEPTH}" in refused(body)


def test_huge_and_non_finite_numbers_are_refused() -> None:
    assert "digits" in refused(b'{"n": ' + b"9" * (MAX_DIGITS + 1) + b"}")
    assert "digits" in refused(b"[0." + b"1" * 10**6 + b"]")
    assert "digits" in refused(b"[1e" + b"0" * 200 + b"5]")
    for body in (b"[1e999]", b"[-1E+400]", b"[9.9e308]", b'{"a": 1e0309}'):
        assert "out of range" in refused(body)
    for body in (b"[NaN]", b'{"a": Infinity}', b"[-Infinity]"):
        assert "NaN and Infinity" in refused(body)


def test_encodings_other_than_utf8_are_refused() -> None:
    doc = '{"pod_id": "x"}'
    assert "byte order mark" in refused(doc.encode("utf-8-sig"))
    assert "byte order mark" in refused(doc.encode("utf-16"))
    assert "byte order mark" in refused(doc.encode("utf-32"))
    assert "control character" in refused(doc.encode("utf-16-le"))
    assert "control character" in refused(doc.encode("utf-32-be"))
    assert "control character" in refused(b'{"pod_id": "x\x00"}')
    assert "UTF-8" in refused(b'{"pod_id": "\xff"}')
    assert "UTF-8" in refused(b'{"pod_id": "\xed\xa0\x80"}')  # an encoded surrogate
    assert "UTF-8" in refused(b'{"pod_id": "\xc3"}')  # truncated sequence


def test_lone_surrogate_escapes_are_refused() -> None:
    for body in (
        b'["\\ud800"]',
        b'["\\uDBFFx"]',
        b'["\\udc00"]',
        b'["\\ud800\\ud800"]',
        b'["\\ud800\\n\\udc00"]',
        b'["\\ud83d"]',
    ):
        assert "lone surrogate" in refused(body)


def test_refusal_never_echoes_the_body() -> None:
    secret = b"pbk_" + b"S" * 43
    message = refused(b'{"key": "' + secret + b'", "n": NaN}')
    assert secret.decode() not in message


# --- the tolerant heartbeat parser -------------------------------------------------------------


def test_tolerant_parser_screens_the_body_without_its_comments() -> None:
    # The quote in the comment hides the brackets from a screen of the raw body; once the
    # comment is stripped they are there, and the second screen refuses them.
    body = b'{"pod_id": "x", # "\n "c": ' + nested(900) + b' # "\n}'
    with pytest.raises(ApiError) as caught:
        parse_json_body(body)
    assert caught.value.code == "invalid_json"


def test_tolerant_parser_keeps_the_spec_example_working() -> None:
    body = b'{"pod_id": "main-gate-pod",\n "ip_address": "192.168.1.100"  # POD\'s local IP\n}'
    assert parse_heartbeat(body).ip_address == "192.168.1.100"


def test_tolerant_parser_refuses_what_json_loads_would_guess_or_invent() -> None:
    for body in ('{"pod_id": "x"}'.encode("utf-16"), b'{"pod_id": "x", "n": NaN} # c'):
        with pytest.raises(ApiError) as caught:
            parse_json_body(body)
        assert caught.value.code == "invalid_json"


def test_comment_stripper_handles_unterminated_strings() -> None:
    # The old pattern retried every later quote of an unterminated string (quadratic).
    body = b"#\n" + b'"' + b'\\"' * 20_000
    assert strip_hash_comments(body) == body[1:]  # the comment goes, the string stays
    assert strip_hash_comments(b'{"a": "x\\\\"} # "\n') == b'{"a": "x\\\\"} \n'
    assert strip_hash_comments(b'"\\') == b'"\\'
    with pytest.raises(ApiError) as caught:
        parse_json_body(body)
    assert caught.value.status == 422


# --- throttle: malformed sign-ins count per source ---------------------------------------------


def test_malformed_sign_ins_count_toward_the_source() -> None:
    t = Throttle(ThrottleLimits(login_per_ip=3, login_window=60))
    for _ in range(3):
        t.check_login_source("203.0.113.9")
        t.login_refused("203.0.113.9")
    with pytest.raises(ApiError) as caught:
        t.check_login_source("203.0.113.9")
    assert caught.value.status == 429 and caught.value.headers
    with pytest.raises(ApiError):  # the same budget as wrong passwords
        t.check_login("anyone@example.test", "203.0.113.9")
    t.check_login_source("198.51.100.1")  # other sources are not affected


# --- 500s: one traceback per site and interval, the rest counted -------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


SECRET = "hunter2"


def _raise_at_one_site() -> None:
    raise RuntimeError("driver said: password=" + SECRET)


def _caught() -> BaseException:
    try:
        _raise_at_one_site()
    except RuntimeError as exc:
        return exc
    raise AssertionError("unreachable")


def test_traceback_limiter_logs_once_per_site_and_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    limiter = TracebackLimiter(60, clock=clock)
    caplog.set_level(logging.ERROR, logger="platebridge.portal")
    logged = [limiter.log(_caught(), "POST", "/api/pod/heartbeat") for _ in range(200)]
    assert logged.count(True) == 1
    assert caplog.text.count("Traceback") == 1
    assert "_raise_at_one_site" in caplog.text  # the stack, for the developer
    assert SECRET not in caplog.text  # not the exception's text
    assert limiter.log(ValueError("other site"), "GET", "/x")  # another site: its own budget
    clock.now += 61
    assert limiter.log(_caught(), "POST", "/api/pod/heartbeat")
    assert "(199 more at this site" in caplog.text


def test_catch_unexpected_answers_500_without_raising(caplog: pytest.LogCaptureFixture) -> None:
    async def broken(scope: object, receive: object, send: object) -> None:
        raise RecursionError("maximum recursion depth exceeded")

    sent: list[dict[str, object]] = []

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    app = CatchUnexpected(broken, TracebackLimiter(60))  # type: ignore[arg-type]
    scope = {"type": "http", "method": "POST", "path": "/api/pod/heartbeat", "headers": []}
    caplog.set_level(logging.ERROR, logger="platebridge.portal")
    for _ in range(50):
        asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert len(starts) == 50 and all(m["status"] == 500 for m in starts)
    bodies = [json.loads(m["body"]) for m in sent if m["type"] == "http.response.body"]  # type: ignore[arg-type]
    assert bodies[0] == {"error": "internal_error", "detail": "internal server error"}
    assert caplog.text.count("Traceback") == 1
