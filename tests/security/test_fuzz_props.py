"""Property-based fuzzing (hypothesis) of the three parsers that face untrusted input:
the stream-token parser (shared by portal and POD), the POD config loader, and the portal's
heartbeat endpoint at the HTTP edge. Nothing but the documented error ever comes out."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from platebridge.core.tokens import TokenError, b64url_encode, verify_stream_token
from platebridge.pod.config import ConfigError, load_config, parse_config
from tests.security.test_tokens import SECRET
from tests.security.token_attacks import raw_token
from tests.support.portal import SeededCompany, new_sqlite_url, run_portal, seed_company

pytestmark = pytest.mark.e2e  # a real portal process (tests/conftest.py guards it)

N = int(os.environ.get("PB_FUZZ_EXAMPLES", "8"))
FAST = settings(max_examples=max(200, N * 25), deadline=None)
SLOW = settings(max_examples=max(60, N * 8), deadline=None, suppress_health_check=list(HealthCheck))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=20,
)

# --- token parser -------------------------------------------------------------------------------


@FAST
@given(st.one_of(st.text(max_size=3000), st.binary(max_size=200), json_values))
def test_token_parser_only_raises_token_error(token: Any) -> None:
    try:
        verify_stream_token(token, SECRET)
    except TokenError as exc:
        assert exc.reason in {"missing", "malformed", "bad_signature", "expired", "not_yet_valid"}


@FAST
@given(json_values)
def test_signed_arbitrary_payloads_are_claims_or_token_error(payload: Any) -> None:
    """Even with a valid signature (an insider's mistake), any payload is handled."""
    try:
        claims = verify_stream_token(raw_token(json.dumps(payload).encode(), SECRET), SECRET)
    except TokenError:
        return
    assert isinstance(claims.exp, int) and claims.pod_id and claims.camera_id


@FAST
@given(st.text(alphabet="ABCDEFabcdef0123456789-_.=", max_size=200))
def test_base64ish_garbage(token: str) -> None:
    with contextlib.suppress(TokenError):
        verify_stream_token(token, SECRET)
    with contextlib.suppress(TokenError):
        verify_stream_token(b64url_encode(token.encode()) + "." + token, SECRET)


# --- POD config loader ----------------------------------------------------------------------------

BASE_CONFIG: dict[str, Any] = {
    "pod_id": "main-gate-pod",
    "portal_url": "http://127.0.0.1:9",
    "api_key": "pbk_fuzz-key-never-in-errors-0123456789",
    "stream_token_secret": "fuzz-stream-secret-never-in-errors",
    "camera_id": "gate-camera-1",
    "camera_rtsp_url": "rtsp://u:CamPw-fuzz-secret@10.0.0.5/s",
}
SECRETS = ("fuzz-key-never-in-errors", "fuzz-stream-secret-never", "CamPw-fuzz-secret")


@FAST
@given(
    st.dictionaries(
        st.sampled_from(
            [
                *BASE_CONFIG,
                "cameras",
                "listen_port",
                "hls_dir",
                "heartbeat_interval",
                "advertise_address",
                "tls_cert",
                "cors_origins",
                "log_level",
                "zz_unknown",
            ]
        ),
        json_values,
        max_size=4,
    )
)
def test_config_tree_is_config_or_config_error(changes: dict[str, Any]) -> None:
    try:
        parse_config({**BASE_CONFIG, **changes}, env={})
    except ConfigError as exc:
        for secret in SECRETS:
            assert secret not in str(exc)


@settings(
    max_examples=max(100, N * 12),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.text(max_size=400) | st.binary(max_size=400).map(lambda b: b.decode("latin-1")))
def test_config_file_is_config_or_config_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "pod.yaml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    with contextlib.suppress(ConfigError):
        load_config(path, env={"X": "1"})


# --- heartbeat at the HTTP edge ---------------------------------------------------------------


@pytest.fixture(scope="module")
def hb_portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, SeededCompany]]:
    db = new_sqlite_url(Path(tmp_path_factory.mktemp("hbfuzz")))
    with run_portal(db, env={"PLATEBRIDGE_THROTTLE_HEARTBEAT_PER_IP": "100000"}) as url:
        yield url, seed_company(db)


VALID = {
    "pod_id": "main-gate-pod",
    "ip_address": "192.168.1.100",
    "firmware_version": "1.0.0",
    "status": "online",
    "cameras": [{"camera_id": "gate-camera-1", "name": "Gate", "rtsp_url": "rtsp://x/s"}],
}
camera_fields = st.fixed_dictionaries(
    {},
    optional={
        "camera_id": json_values,
        "name": json_values,
        "rtsp_url": json_values,
        "position": json_values,
        "status": json_values,
        "error": json_values,
    },
)
payloads = st.one_of(
    st.dictionaries(st.sampled_from([*VALID, "stream_port", "extra"]), json_values).map(
        lambda d: {**VALID, **d}
    ),
    st.lists(camera_fields, max_size=5).map(lambda cams: {**VALID, "cameras": cams}),
    json_values,
)


def _check_heartbeat_response(r: httpx.Response) -> None:
    assert r.status_code in {200, 401, 403, 413, 422}, (r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("application/json")
    if r.status_code != 200:
        assert set(r.json()) == {"error", "detail"}


@SLOW
@given(payload=payloads)
def test_heartbeat_json_payloads(hb_portal: tuple[str, SeededCompany], payload: Any) -> None:
    url, co = hb_portal
    body = json.dumps(payload, allow_nan=True).encode()
    r = httpx.post(f"{url}/api/pod/heartbeat", headers=co.pod_auth, content=body, timeout=15)
    _check_heartbeat_response(r)


@SLOW
@given(
    body=st.binary(max_size=2000),
    ctype=st.sampled_from(
        [
            "application/json",
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
        ]
    ),
)
def test_heartbeat_raw_bodies(
    hb_portal: tuple[str, SeededCompany], body: bytes, ctype: str
) -> None:
    url, co = hb_portal
    headers = {**co.pod_auth, "Content-Type": ctype}
    r = httpx.post(f"{url}/api/pod/heartbeat", headers=headers, content=body, timeout=15)
    _check_heartbeat_response(r)


def test_heartbeat_still_consistent_after_fuzzing(hb_portal: tuple[str, SeededCompany]) -> None:
    url, co = hb_portal
    r = httpx.post(f"{url}/api/pod/heartbeat", headers=co.pod_auth, json=VALID, timeout=15)
    assert r.status_code == 200, r.text
