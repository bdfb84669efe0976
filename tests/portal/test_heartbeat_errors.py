"""Every refused heartbeat: precise JSON error, nothing written, no secret echoed."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.portal.test_heartbeat import camera_payload
from tests.support.inprocess import AppPortal
from tests.support.portal import SeededCompany, rotate_pod_key

# Fast lane: the portal app in-process (tests/support/inprocess.py) on SQLite and PostgreSQL.

HB = "/api/pod/heartbeat"


def post(app_portal: AppPortal, headers: dict[str, str], **kwargs: object) -> httpx.Response:
    return app_portal.client.post(HB, headers=headers, **kwargs)  # type: ignore[arg-type]


def pod_row(app_portal: AppPortal, t: SeededCompany) -> dict[str, object]:
    user = app_portal.login(t.email, t.password)
    pods = app_portal.client.get("/api/pods", headers=user).json()["pods"]
    return next(p for p in pods if p["pod_id"] == t.pod_id)


def assert_error(r: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body: dict[str, object] = r.json()
    assert body["error"] == code
    assert body["detail"]
    return body


def test_missing_key_401(app_portal: AppPortal, tenant: SeededCompany) -> None:
    r = post(app_portal, {}, json=camera_payload("cam-a"))
    assert_error(r, 401, "missing_api_key")
    r = post(app_portal, {"Authorization": "Basic Zm9vOmJhcg=="}, json=camera_payload("cam-a"))
    assert_error(r, 401, "missing_api_key")


def test_unknown_key_401_not_echoed(app_portal: AppPortal, tenant: SeededCompany) -> None:
    bogus = "pbk_" + "x" * 43
    r = post(app_portal, {"Authorization": f"Bearer {bogus}"}, json=camera_payload("cam-a"))
    assert_error(r, 401, "invalid_api_key")
    assert "xxxx" not in r.text
    # Unknown key with an invalid body: still 401 (authentication first).
    r = post(app_portal, {"Authorization": f"Bearer {bogus}"}, json={"pod_id": ""})
    assert_error(r, 401, "invalid_api_key")
    r = post(app_portal, {"Authorization": "Bearer not-a-pod-key"}, json=camera_payload("cam-a"))
    assert_error(r, 401, "invalid_api_key")
    assert pod_row(app_portal, tenant)["last_heartbeat"] is None


def test_revoked_key_401(app_portal: AppPortal, tenant: SeededCompany) -> None:
    assert post(app_portal, tenant.pod_auth, json=camera_payload("cam-a")).status_code == 200
    rotated = rotate_pod_key(app_portal.db_url, tenant.company_id, tenant.pod_id)
    r = post(app_portal, tenant.pod_auth, json=camera_payload("cam-a"))  # same body: fast path too
    assert_error(r, 401, "invalid_api_key")
    r = post(app_portal, {"Authorization": f"Bearer {rotated}"}, json=camera_payload("cam-a"))
    assert r.status_code == 200


def test_wrong_pod_403(app_portal: AppPortal, tenant: SeededCompany) -> None:
    payload = camera_payload("cam-a")
    payload["pod_id"] = "some-other-pod"
    r = post(app_portal, tenant.pod_auth, json=payload)
    assert_error(r, 403, "pod_mismatch")
    assert pod_row(app_portal, tenant)["last_heartbeat"] is None


def test_body_over_64k_413(app_portal: AppPortal, tenant: SeededCompany) -> None:
    big = camera_payload("cam-a")
    big["padding"] = "x" * (64 * 1024)
    r = post(app_portal, tenant.pod_auth, json=big)
    assert_error(r, 413, "payload_too_large")

    def chunks() -> Iterator[bytes]:  # no Content-Length: the stream itself is capped
        yield b'{"pod_id": "main-gate-pod", "padding": "'
        for _ in range(80):
            yield b"x" * 1024
        yield b'"}'

    r = post(app_portal, tenant.pod_auth, content=chunks())
    assert_error(r, 413, "payload_too_large")
    assert pod_row(app_portal, tenant)["last_heartbeat"] is None


def _fields(r: httpx.Response) -> set[str]:
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["error"] == "validation_error"
    assert isinstance(body["detail"], list)
    return {d["field"] for d in body["detail"]}


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda p: p.update(ip_address="999.1.1.1"), "ip_address"),
        (lambda p: p.update(ip_address="gate.example.com"), "ip_address"),
        (lambda p: p.update(pod_id=""), "pod_id"),
        (lambda p: p["cameras"][0].update(camera_id=""), "cameras.0.camera_id"),
        (lambda p: p["cameras"][0].update(name="n" * 201), "cameras.0.name"),
        (lambda p: p["cameras"][0].update(position="p" * 201), "cameras.0.position"),
        (lambda p: p.update(firmware_version="v" * 65), "firmware_version"),
        (lambda p: p.update(cameras="gate-camera-1"), "cameras"),
        (lambda p: p.update(pod_id=42), "pod_id"),
        (lambda p: p.update(stream_port=70000), "stream_port"),
        (lambda p: p.update(status="sleeping"), "status"),
        (lambda p: p["cameras"][0].update(status="weird"), "cameras.0.status"),
        (
            lambda p: p.update(
                cameras=[{"camera_id": f"c{i}", "name": f"C{i}"} for i in range(65)]
            ),
            "cameras",
        ),
    ],
)
def test_invalid_fields_422_name_the_field(
    app_portal: AppPortal, pristine_tenant: SeededCompany, mutate: object, field: str
) -> None:
    tenant = pristine_tenant
    payload = camera_payload("cam-ok", "cam-bad")
    mutate(payload)  # type: ignore[operator]
    r = post(app_portal, tenant.pod_auth, json=payload)
    assert field in _fields(r)
    # Nothing half-written: neither the pod nor the valid first camera.
    assert pod_row(app_portal, tenant)["last_heartbeat"] is None
    assert (
        app_portal.client.get(
            "/api/cameras", headers=app_portal.login(tenant.email, tenant.password)
        ).json()["cameras"]
        == []
    )


def test_not_json_422(app_portal: AppPortal, tenant: SeededCompany) -> None:
    for body in (b"{not json", b"[1, 2]", b""):
        r = post(app_portal, tenant.pod_auth, content=body)
        assert r.status_code == 422, r.text
        assert r.json()["error"] == "validation_error"


def test_secrets_never_in_errors(app_portal: AppPortal, tenant: SeededCompany) -> None:
    payload = camera_payload("cam-a")
    payload["cameras"][0]["rtsp_url"] = "rtsp://admin:topsecret@1.2.3.4/" + "a" * 3000  # type: ignore[index]
    r = post(app_portal, tenant.pod_auth, json=payload)
    assert "cameras.0.rtsp_url" in _fields(r)
    assert "topsecret" not in r.text
    assert tenant.api_key not in r.text
