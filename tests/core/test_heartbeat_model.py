from __future__ import annotations

import json

import pytest
from pydantic import ConfigDict, ValidationError, create_model

from platebridge.core.heartbeat import MAX_CAMERAS, HeartbeatCamera, HeartbeatRequest

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


# --- camera media (issue 12): additive, optional, bounded --------------------------------

MEDIA = {
    "video_codec": "h264",
    "video_profile": "High",
    "width": 1920,
    "height": 1080,
    "fps": 25.0,
    "keyframe_interval": 4.0,
    "bitrate_kbps": 4100,
    "audio_codec": "pcm_alaw",
    "audio": "converted",
    "note": "audio pcm_alaw converted to AAC",
    "codecs": "avc1.640028,mp4a.40.2",
}


def _with_media(**media: object) -> dict[str, object]:
    payload = json.loads(SPEC_EXAMPLE)
    payload["cameras"][0]["media"] = MEDIA | media
    return payload


def test_media_is_read_and_transcoded_defaults_to_false() -> None:
    payload = _with_media()
    payload["cameras"][0]["sub_media"] = {"video_codec": "h264", "width": 640, "height": 360}
    cam = HeartbeatRequest.model_validate(payload).cameras[0]  # type: ignore[index]
    assert cam.media is not None and cam.media.codecs == "avc1.640028,mp4a.40.2"
    assert cam.media.audio == "converted" and cam.media.transcoded is False
    assert cam.sub_media is not None and cam.sub_media.width == 640
    assert cam.sub_media.codecs is None and cam.sub_media.audio is None


def test_an_older_pod_without_media_is_accepted() -> None:
    cam = HeartbeatRequest.model_validate_json(SPEC_EXAMPLE).cameras[0]  # type: ignore[index]
    assert cam.media is None and cam.sub_media is None


def test_a_newer_pods_extra_media_fields_are_ignored() -> None:
    cam = HeartbeatRequest.model_validate(_with_media(hdr="pq")).cameras[0]  # type: ignore[index]
    assert cam.media is not None and not hasattr(cam.media, "hdr")


def test_an_older_portal_ignores_media() -> None:
    """The portal before issue 12 validated cameras with the same model minus the media
    fields (and ``extra="ignore"``): a heartbeat from a POD that sends media still passes."""
    fields = {
        name: (info.annotation, info)
        for name, info in HeartbeatCamera.model_fields.items()
        if name not in ("media", "sub_media")
    }
    old_camera = create_model(  # type: ignore[call-overload]
        "OldHeartbeatCamera", __config__=ConfigDict(extra="ignore"), **fields
    )
    old_request = create_model(  # type: ignore[call-overload]
        "OldHeartbeatRequest",
        __base__=HeartbeatRequest,
        cameras=(list[old_camera] | None, None),
    )
    sent = HeartbeatRequest.model_validate(_with_media()).model_dump(mode="json")
    old = old_request.model_validate(sent)
    assert old.cameras[0].name == "Main Gate Camera"
    assert not hasattr(old.cameras[0], "media")


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"codecs": 'avc1.640028"; x'}, "codecs"),
        ({"codecs": "avc1 640028"}, "codecs"),
        ({"codecs": "avc1.64,"}, "codecs"),
        ({"codecs": "a" * 101}, "codecs"),
        ({"note": "x" * 201}, "note"),
        ({"audio": "mp3"}, "audio"),
        ({"width": 0}, "width"),
        ({"fps": 0}, "fps"),
        ({"bitrate_kbps": -1}, "bitrate_kbps"),
        ({"video_codec": "<h264>"}, "video_codec"),
        ({"video_profile": "High\n"}, None),  # stripped: fine
        ({"video_profile": "Hi<gh"}, "video_profile"),
    ],
)
def test_media_fields_are_bounded(patch: dict[str, object], field: str | None) -> None:
    if field is None:
        HeartbeatRequest.model_validate(_with_media(**patch))
        return
    with pytest.raises(ValidationError) as err:
        HeartbeatRequest.model_validate(_with_media(**patch))
    assert err.value.errors()[0]["loc"][-1] == field
