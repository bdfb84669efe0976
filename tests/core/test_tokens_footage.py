"""Footage tokens (issue 13): the scope and range claims, and that live tokens are unchanged."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest

from platebridge.core.tokens import (
    StreamClaims,
    TokenError,
    b64url_decode,
    b64url_encode,
    sign_stream_token,
    verify_stream_token,
)

VECTORS = json.loads((Path(__file__).parent / "token_vectors.json").read_text())
NOW = 1_767_225_600
SECRET = "pod-secret"
BASE = {"user_id": "u-1", "pod_id": "p", "camera_id": "c", "exp": NOW + 600}


def forge(payload: object) -> str:
    body = b64url_encode(json.dumps(payload).encode())
    sig = hmac.new(SECRET.encode(), body.encode(), hashlib.sha256).digest()
    return f"{body}.{b64url_encode(sig)}"


def footage(start: int = NOW - 3600, end: int = NOW - 1800) -> StreamClaims:
    return StreamClaims("u-1", "p", "c", NOW + 600, scope="footage", start=start, end=end)


def test_live_vectors_carry_no_scope_and_verify_as_live() -> None:
    live = [v for v in VECTORS if "scope" not in v["payload"]]
    assert len(live) == 2  # the vectors published before footage tokens existed
    for vector in live:
        claims = verify_stream_token(vector["token"], vector["secret"], now=NOW)
        assert (claims.scope, claims.start, claims.end) == ("live", None, None)
        assert set(claims.to_payload()) <= {"user_id", "pod_id", "camera_id", "exp", "iat"}


def test_footage_vectors_verify_with_their_range() -> None:
    vectors = [v for v in VECTORS if v["payload"].get("scope") == "footage"]
    assert len(vectors) == 2
    for vector in vectors:
        claims = verify_stream_token(vector["token"], vector["secret"], now=NOW)
        assert claims.scope == "footage"
        assert (claims.start, claims.end) == (vector["payload"]["from"], vector["payload"]["to"])
        wire = json.loads(b64url_decode(vector["token"].split(".")[0]))
        assert list(wire)[-3:] == ["scope", "from", "to"]  # appended after the live claims


def test_footage_round_trip_and_wire_names() -> None:
    claims = footage()
    token = sign_stream_token(claims, SECRET)
    wire = json.loads(b64url_decode(token.split(".")[0]))
    assert wire["scope"] == "footage"
    assert (wire["from"], wire["to"]) == (NOW - 3600, NOW - 1800)
    assert "start" not in wire and "end" not in wire
    assert verify_stream_token(token, SECRET, now=NOW) == claims


def test_live_token_payload_is_unchanged() -> None:
    token = sign_stream_token(StreamClaims("u-1", "p", "c", NOW + 600), SECRET)
    assert json.loads(b64url_decode(token.split(".")[0])) == BASE


def test_covers() -> None:
    claims = footage(1000, 2000)
    assert claims.covers(1000, 2000)
    assert claims.covers(1500, 1500.5)
    assert not claims.covers(999.9, 1500)
    assert not claims.covers(1500, 2000.1)
    live = StreamClaims("u-1", "p", "c", NOW + 600)
    assert not live.covers(1000, 1001)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"scope": "footage"},
        {"scope": "footage", "start": 10},
        {"scope": "footage", "start": 10, "end": 10},
        {"scope": "footage", "start": 20, "end": 10},
        {"start": 10, "end": 20},
        {"scope": "archive"},
    ],
)
def test_inconsistent_claims_cannot_be_built(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        StreamClaims("u-1", "p", "c", NOW + 600, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "extra",
    [
        {"scope": "footage"},
        {"scope": "footage", "from": NOW},
        {"scope": "footage", "to": NOW},
        {"scope": "footage", "from": NOW, "to": NOW},
        {"scope": "footage", "from": NOW, "to": NOW - 1},
        {"scope": "footage", "from": "1", "to": NOW},
        {"scope": "footage", "from": 1.5, "to": NOW},
        {"scope": "footage", "from": True, "to": NOW},
        {"scope": "footage", "from": -1, "to": NOW},
        {"scope": "FOOTAGE", "from": 1, "to": NOW},
        {"scope": None},
        {"scope": ["footage"]},
        {"from": 1, "to": NOW},  # a range without the scope: not a live token either
        {"scope": "live", "from": 1, "to": NOW},
    ],
)
def test_signed_but_invalid_scope_claims_are_malformed(extra: dict[str, object]) -> None:
    with pytest.raises(TokenError) as err:
        verify_stream_token(forge(BASE | extra), SECRET, now=NOW)
    assert err.value.reason == "malformed"


def test_explicit_live_scope_is_a_live_token() -> None:
    claims = verify_stream_token(forge(BASE | {"scope": "live"}), SECRET, now=NOW)
    assert claims.scope == "live"


def test_expired_footage_token_is_expired() -> None:
    token = sign_stream_token(footage(), SECRET)
    with pytest.raises(TokenError) as err:
        verify_stream_token(token, SECRET, now=NOW + 600)
    assert err.value.reason == "expired"
