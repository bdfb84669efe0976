"""Forged and malformed stream tokens, shared by the POD- and portal-side token tests."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass

from platebridge.core.tokens import StreamClaims, b64url_encode, sign_stream_token


@dataclass(frozen=True)
class Attack:
    name: str
    token: str
    reason: str  # what core.tokens says: bad_signature, malformed, expired, ...


def raw_token(payload: bytes, secret: str) -> str:
    """Sign arbitrary payload bytes properly (to reach the checks after the signature)."""
    p = b64url_encode(payload)
    return f"{p}.{b64url_encode(hmac.new(secret.encode(), p.encode(), hashlib.sha256).digest())}"


def attacks(
    secret: str, other_secret: str, user_id: str, pod_id: str, camera_id: str
) -> list[Attack]:
    # Built once at collection time and used minutes later in a long suite: lifetimes are a
    # day so only the attack itself (not the clock) decides the expected reason.
    now = int(time.time())
    valid_until = now + 86_400
    good = StreamClaims(user_id, pod_id, camera_id, valid_until)
    token = sign_stream_token(good, secret)
    payload, sig = token.split(".")
    other_cam = sign_stream_token(
        StreamClaims(user_id, pod_id, "zz-other-cam", valid_until), secret
    )
    forged_payload = b64url_encode(
        json.dumps({**good.to_payload(), "camera_id": "zz-other-cam"}).encode()
    )
    flipped = sig[:-2] + ("A" if sig[-2] != "A" else "B") + sig[-1]
    return [
        Attack("tampered_payload", f"{forged_payload}.{sig}", "bad_signature"),
        Attack("tampered_payload_exp", f"{payload[:-3]}xyz.{sig}", "bad_signature"),
        Attack("tampered_signature", f"{payload}.{flipped}", "bad_signature"),
        Attack("swapped_parts", f"{sig}.{payload}", "bad_signature"),
        Attack("signature_of_other_token", f"{payload}.{other_cam.split('.')[1]}", "bad_signature"),
        Attack("other_pods_secret", sign_stream_token(good, other_secret), "bad_signature"),
        Attack(
            "expired",
            sign_stream_token(StreamClaims(user_id, pod_id, camera_id, now - 1), secret),
            "expired",
        ),
        Attack(
            "iat_beyond_skew",
            sign_stream_token(
                StreamClaims(user_id, pod_id, camera_id, valid_until, iat=now + 43_200), secret
            ),
            "not_yet_valid",
        ),
        Attack("empty", "", "missing"),
        Attack("ten_kilobytes", "A" * 5000 + "." + "B" * 5240, "malformed"),
        Attack("non_ascii", f"{payload}é.{sig}", "malformed"),
        Attack("non_ascii_only", "ключ.подпись", "malformed"),
        Attack("padding_payload", f"{payload}==.{sig}", "malformed"),
        Attack("padding_signature", f"{payload}.{sig}=", "malformed"),
        Attack("standard_base64_alphabet", f"{payload}+/.{sig}", "malformed"),
        Attack("three_parts", f"{token}.{sig}", "malformed"),
        Attack("no_signature", f"{payload}.", "malformed"),
        Attack("only_dot", ".", "malformed"),
        Attack("trailing_newline", token + "\n", "malformed"),
        Attack("leading_space", " " + token, "malformed"),
        Attack("alg_none_jwt", "eyJhbGciOiJub25lIn0.eyJ1c2VyX2lkIjoieCJ9.", "malformed"),
        Attack("signed_deep_nesting", raw_token(b"[" * 1500, secret), "malformed"),
        Attack("signed_not_object", raw_token(b"[1,2,3]", secret), "malformed"),
        Attack("signed_not_json", raw_token(b"\xff\xfe\x00", secret), "malformed"),
        Attack(
            "signed_exp_as_string",
            raw_token(json.dumps({**good.to_payload(), "exp": str(valid_until)}).encode(), secret),
            "malformed",
        ),
        Attack(
            "signed_exp_float_inf",
            raw_token(
                json.dumps({**good.to_payload(), "exp": 1e308})
                .encode()
                .replace(b"1e+308", b"1e999"),
                secret,
            ),
            "malformed",
        ),
    ]
