from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from platebridge.core.heartbeat import MAX_CAMERAS, HeartbeatRequest

SPEC_EXAMPLE = """{
  "pod_id": "main-gate-pod",
  "ip_address": "192.168.1.100",
  "firmware_version": "1.0.0",
  "status": "online",
  "cameras": [
    {
      "camera_id": "gate-camera-1",
      "name": "Main Gate Camera",
      "rtsp_url": "rtsp://192.168.1.50:554/stream",
      "position": "main entrance"
    }
  ]
}"""


def test_spec_example_parses_with_defaults() -> None:
    hb = HeartbeatRequest.model_validate_json(SPEC_EXAMPLE)
    assert hb.pod_id == "main-gate-pod"
    assert hb.stream_port == 8000
    assert hb.cameras is not None and hb.cameras[0].status == "active"


def test_minimal_troubleshooting_heartbeat_keeps_camera_list_unknown() -> None:
    hb = HeartbeatRequest.model_validate({"pod_id": "main-gate-pod"})
    assert hb.cameras is None and hb.ip_address is None


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"ip_address": "192.168.1.300"}, "ip_address"),
        ({"ip_address": "example.com"}, "ip_address"),
        ({"pod_id": ""}, "pod_id"),
        ({"pod_id": "../etc"}, "pod_id"),
        ({"pod_id": "x" * 65}, "pod_id"),
        ({"stream_port": 0}, "stream_port"),
        ({"status": "great"}, "status"),
        ({"cameras": "none"}, "cameras"),
    ],
)
def test_bad_fields_are_named(patch: dict[str, object], field: str) -> None:
    payload = json.loads(SPEC_EXAMPLE) | patch
    with pytest.raises(ValidationError) as err:
        HeartbeatRequest.model_validate(payload)
    assert err.value.errors()[0]["loc"][0] == field


def test_camera_limits() -> None:
    cam = {"camera_id": "c", "name": "n"}
    too_many = [dict(cam, camera_id=f"c{i}") for i in range(MAX_CAMERAS + 1)]
    with pytest.raises(ValidationError):
        HeartbeatRequest.model_validate({"pod_id": "p", "cameras": too_many})
    with pytest.raises(ValidationError):
        HeartbeatRequest.model_validate({"pod_id": "p", "cameras": [cam, cam]})
    with pytest.raises(ValidationError):
        HeartbeatRequest.model_validate({"pod_id": "p", "cameras": [dict(cam, name="x" * 201)]})


def test_ipv6_is_normalised() -> None:
    hb = HeartbeatRequest.model_validate({"pod_id": "p", "ip_address": "FD7A:115C:A1E0::0005"})
    assert hb.ip_address == "fd7a:115c:a1e0::5"
