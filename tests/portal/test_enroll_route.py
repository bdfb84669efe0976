"""``POST /api/pod/enroll``: a POD fetches its own stream secret with its ``pbk_`` key.

Fast lane: the portal app in-process (tests/support/inprocess.py) on SQLite and PostgreSQL,
one app per module (its own throttle: these tests send refused keys on purpose).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from platebridge.core.enroll import ENROLL_PATH
from tests.portal.test_heartbeat import camera_payload
from tests.support import inprocess
from tests.support.inprocess import AppPortal
from tests.support.portal import (
    SeededCompany,
    create_site,
    enrollment_key,
    in_session,
    rotate_pod_key,
    seed_company,
    sql,
)

HB = "/api/pod/heartbeat"
BOGUS = {"Authorization": "Bearer pbk_" + "x" * 43}


@pytest.fixture(scope="module")
def portal(db_url: str) -> Iterator[AppPortal]:
    with inprocess.app_portal(db_url) as app:
        yield app


def enroll(portal: AppPortal, headers: dict[str, str], **kwargs: object) -> httpx.Response:
    return portal.client.post(ENROLL_PATH, headers=headers, **kwargs)  # type: ignore[arg-type]


def assert_error(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["error"] == code and body["detail"], body
    assert "stream_token_secret" not in body


def db_secret(db_url: str, company_id: str, pod_id: str) -> str:
    rows = sql(
        db_url,
        "SELECT stream_token_secret FROM pods WHERE pod_id = :p AND company_id = :c",
        p=pod_id,
        c=company_id.replace("-", "") if "sqlite" in db_url else company_id,
    )
    assert len(rows) == 1, rows
    return str(rows[0][0])


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_pod_key_gets_its_own_secret(portal: AppPortal, tenant: SeededCompany) -> None:
    r = enroll(portal, tenant.pod_auth, json={"pod_id": tenant.pod_id})
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    assert r.json() == {
        "pod_id": tenant.pod_id,
        "stream_token_secret": tenant.stream_token_secret,
        "heartbeat_interval": 60,  # the default PLATEBRIDGE_HEARTBEAT_INTERVAL
    }
    # Only the pod_id is read; other fields (a newer POD's) are ignored.
    r = enroll(portal, tenant.pod_auth, json={"pod_id": tenant.pod_id, "extra": [1]})
    assert r.status_code == 200


def test_a_rotated_secret_is_handed_out_at_once(portal: AppPortal, tenant: SeededCompany) -> None:
    from platebridge.portal.services import admin

    async def rotate(s: Any) -> str:
        pod = await admin.find_pod(s, tenant.pod_id, tenant.company_id)
        return await admin.rotate_pod_stream_secret(s, pod)

    new_secret = asyncio.run(in_session(portal.db_url, rotate))
    r = enroll(portal, tenant.pod_auth, json={"pod_id": tenant.pod_id})
    assert r.status_code == 200
    assert r.json()["stream_token_secret"] == new_secret != tenant.stream_token_secret


def test_refused_keys_401(portal: AppPortal, tenant: SeededCompany) -> None:
    body = {"pod_id": tenant.pod_id}
    assert_error(enroll(portal, {}, json=body), 401, "missing_api_key")
    assert_error(enroll(portal, BOGUS, json=body), 401, "invalid_api_key")
    assert_error(enroll(portal, bearer("not-a-pod-key"), json=body), 401, "invalid_api_key")
    # An unknown key with a bad body is still told 401 (authentication first).
    assert_error(enroll(portal, BOGUS, content=b"[" * 3000), 401, "invalid_api_key")
    rotated = rotate_pod_key(portal.db_url, tenant.company_id, tenant.pod_id)
    assert_error(enroll(portal, tenant.pod_auth, json=body), 401, "invalid_api_key")
    r = enroll(portal, bearer(rotated), json=body)
    assert r.status_code == 200 and r.json()["stream_token_secret"] == tenant.stream_token_secret


def test_pod_key_naming_another_pod_403(portal: AppPortal, tenant: SeededCompany) -> None:
    other = seed_company(portal.db_url, pod_id="other-pod")
    for pod_id in ("other-pod", "nonexistent-pod"):
        r = enroll(portal, tenant.pod_auth, json={"pod_id": pod_id})
        assert_error(r, 403, "pod_mismatch")
        assert other.stream_token_secret not in r.text


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"[" * 3000, "invalid_json"),  # pathological: screened before the parser
        (b'{"pod_id": 1' + b"0" * 3000 + b"}", "invalid_json"),
        (b'{"pod_id": NaN}', "invalid_json"),
        (b"not json", "validation_error"),
        (b"{}", "validation_error"),
        (b'{"pod_id": "bad id!"}', "validation_error"),
        (b'["main-gate-pod"]', "validation_error"),
    ],
)
def test_bad_bodies_422(portal: AppPortal, tenant: SeededCompany, body: bytes, code: str) -> None:
    r = enroll(portal, tenant.pod_auth, content=body)
    assert_error(r, 422, code)


def test_body_over_cap_413(portal: AppPortal, tenant: SeededCompany) -> None:
    r = enroll(portal, tenant.pod_auth, json={"pod_id": tenant.pod_id, "pad": "x" * 8192})
    assert_error(r, 413, "payload_too_large")


def test_enrollment_key_gets_the_secret_of_the_pod_it_registered(
    portal: AppPortal, tenant: SeededCompany
) -> None:
    key = bearer(enrollment_key(portal.db_url, tenant.site_id))
    body = {"pod_id": "north-gate-pod"}
    # Not registered yet: one heartbeat first.
    assert_error(enroll(portal, key, json=body), 404, "pod_not_registered")
    hb = camera_payload("cam-1")
    hb["pod_id"] = "north-gate-pod"
    r = portal.client.post(HB, headers=key, json=hb)
    assert r.status_code == 200 and r.json()["registered"] is True
    r = enroll(portal, key, json=body)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    secret = r.json()["stream_token_secret"]
    assert secret == db_secret(portal.db_url, tenant.company_id, "north-gate-pod")
    assert len(secret) >= 40

    # The admin-created pod of the same site (it has its own key): refused.
    r = enroll(portal, key, json={"pod_id": tenant.pod_id})
    assert_error(r, 403, "not_registered_by_key")
    assert tenant.stream_token_secret not in r.text


def test_enrollment_key_scope(portal: AppPortal, tenant: SeededCompany) -> None:
    key = bearer(enrollment_key(portal.db_url, tenant.site_id))
    hb = camera_payload("cam-1")
    hb["pod_id"] = "east-gate-pod"
    assert portal.client.post(HB, headers=key, json=hb).status_code == 200
    body = {"pod_id": "east-gate-pod"}

    # A key of another site of the same company.
    back = create_site(portal.db_url, tenant.community_id, "Back Gate")
    assert_error(
        enroll(portal, bearer(enrollment_key(portal.db_url, back)), json=body),
        403,
        "pod_in_other_site",
    )
    # A key of another company: that pod_id does not exist there.
    other = seed_company(portal.db_url)
    r = enroll(portal, bearer(enrollment_key(portal.db_url, other.site_id)), json=body)
    assert_error(r, 404, "pod_not_registered")
    # A key of the same site issued after the pod was registered did not register it.
    later = bearer(enrollment_key(portal.db_url, tenant.site_id))
    assert_error(enroll(portal, later, json=body), 403, "not_registered_by_key")
    # A revoked enrollment key: 401.
    sql(portal.db_url, "UPDATE api_keys SET revoked_at = created_at WHERE kind = 'enrollment'")
    assert_error(enroll(portal, key, json=body), 401, "invalid_api_key")


def test_refused_keys_are_throttled_with_the_heartbeat(db_url: str) -> None:
    """One budget per source for both routes: 3 refused keys (enroll or heartbeat), then even
    a good key is 429 from that source. Good keys and a missing key never count."""
    env = {"PLATEBRIDGE_THROTTLE_HEARTBEAT_PER_IP": "3"}
    with inprocess.app_portal(db_url, env) as app:
        co = seed_company(db_url)
        body = {"pod_id": co.pod_id}
        for _ in range(5):
            assert enroll(app, co.pod_auth, json=body).status_code == 200
            assert enroll(app, {}, json=body).status_code == 401
        assert enroll(app, BOGUS, json=body).status_code == 401
        assert app.client.post(HB, headers=BOGUS, json=body).status_code == 401
        assert enroll(app, BOGUS, content=b"{").status_code == 401
        r = enroll(app, co.pod_auth, json=body)
        assert_error(r, 429, "too_many_requests")
        assert int(r.headers["retry-after"]) >= 1
        assert co.stream_token_secret not in r.text
        assert app.client.post(HB, headers=co.pod_auth, json=body).status_code == 429
