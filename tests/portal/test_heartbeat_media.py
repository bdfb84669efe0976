"""Heartbeat ``media`` on the portal (issue 12 §3): stored per camera (main and substream), part
of the heartbeat digest (an unchanged camera stays on the fast path, a change is written), an
older POD without media accepted, a bad value refused at the edge."""

from __future__ import annotations

import json
import uuid
from typing import Any

from tests.portal.test_heartbeat import camera_payload
from tests.support.inprocess import AppPortal
from tests.support.portal import SeededCompany, sql

HB = "/api/pod/heartbeat"
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
    "codecs": "avc1.640028,mp4a.40.2",
}


def payload(camera_id: str, media: Any = None, sub_media: Any = None) -> dict[str, Any]:
    body = camera_payload(camera_id)
    cam = body["cameras"][0]  # type: ignore[index]
    if media is not None:
        cam["media"] = media
    if sub_media is not None:
        cam["sub_media"] = sub_media
    return body


def stored(app: AppPortal, camera_id: str) -> tuple[Any, Any, Any, Any]:
    rows = sql(
        app.db_url,
        "SELECT c.media, c.sub_media, c.updated_at, p.heartbeat_digest FROM cameras c "
        "JOIN pods p ON p.id = c.pod_id WHERE c.camera_id = :cam",
        cam=camera_id,
    )
    assert len(rows) == 1, rows
    media, sub, updated, digest = rows[0]
    return (json.loads(media) if media else None, json.loads(sub) if sub else None, updated, digest)


def test_media_is_stored_and_unchanged_media_stays_on_the_fast_path(
    app_portal: AppPortal, tenant: SeededCompany
) -> None:
    cam = f"cam-{uuid.uuid4().hex[:8]}"
    sub = {"video_codec": "h264", "width": 640, "height": 360, "codecs": "avc1.4d401e"}
    r = app_portal.client.post(HB, headers=tenant.pod_auth, json=payload(cam, MEDIA, sub))
    assert r.status_code == 200, r.text
    media, sub_media, updated, digest = stored(app_portal, cam)
    assert media == MEDIA | {"transcoded": False}
    assert sub_media == sub | {"transcoded": False}
    # The same content again: the fast path (one UPDATE of pods.last_heartbeat), nothing else.
    r = app_portal.client.post(HB, headers=tenant.pod_auth, json=payload(cam, MEDIA, sub))
    assert r.status_code == 200
    assert stored(app_portal, cam)[2:] == (updated, digest)
    # New media (the camera's bitrate really changed): a new digest, the row rewritten.
    changed = MEDIA | {"bitrate_kbps": 8000}
    r = app_portal.client.post(HB, headers=tenant.pod_auth, json=payload(cam, changed, sub))
    assert r.status_code == 200
    media, sub_media, updated2, digest2 = stored(app_portal, cam)
    assert media["bitrate_kbps"] == 8000 and digest2 != digest and updated2 != updated


def test_an_older_pod_without_media_is_accepted(
    app_portal: AppPortal, tenant: SeededCompany
) -> None:
    cam = f"cam-{uuid.uuid4().hex[:8]}"
    r = app_portal.client.post(HB, headers=tenant.pod_auth, json=payload(cam, MEDIA))
    assert r.status_code == 200
    # The POD is downgraded (or the camera not probed yet): no media now means none stored.
    r = app_portal.client.post(HB, headers=tenant.pod_auth, json=payload(cam))
    assert r.status_code == 200, r.text
    assert stored(app_portal, cam)[:2] == (None, None)


def test_bad_media_is_refused_at_the_edge(app_portal: AppPortal, tenant: SeededCompany) -> None:
    cam = f"cam-{uuid.uuid4().hex[:8]}"
    bad = MEDIA | {"codecs": 'avc1.640028"><script>'}
    r = app_portal.client.post(HB, headers=tenant.pod_auth, json=payload(cam, bad))
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "validation_error"
    assert sql(app_portal.db_url, "SELECT 1 FROM cameras WHERE camera_id = :c", c=cam) == []


def test_api_cameras_lists_media(app_portal: AppPortal, tenant: SeededCompany) -> None:
    with_media, without = f"cam-{uuid.uuid4().hex[:8]}", f"cam-{uuid.uuid4().hex[:8]}"
    body = payload(with_media, MEDIA, {"video_codec": "h264", "width": 640, "height": 360})
    body["cameras"].append(payload(without)["cameras"][0])
    assert app_portal.client.post(HB, headers=tenant.pod_auth, json=body).status_code == 200
    user = app_portal.login(tenant.email, tenant.password)
    r = app_portal.client.get("/api/cameras", headers=user)
    assert r.status_code == 200, r.text
    items = {c["id"]: c for c in r.json()["cameras"]}
    assert items[with_media]["media"] == MEDIA | {"transcoded": False}
    assert items[with_media]["sub_media"] == {
        "video_codec": "h264",
        "width": 640,
        "height": 360,
        "transcoded": False,
    }
    assert items[without]["media"] is None and items[without]["sub_media"] is None
