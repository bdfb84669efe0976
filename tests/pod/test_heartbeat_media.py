"""The heartbeat's per-camera ``media`` (issue 12): built from the probe and the live output,
rounded so that an unchanged camera gives the same heartbeat content at every beat."""

from __future__ import annotations

from platebridge.core.fmp4 import Splitter
from platebridge.core.heartbeat import HeartbeatRequest
from platebridge.pod.ffmpeg import MediaInfo
from platebridge.pod.heartbeat import build_payload, camera_media
from platebridge.pod.live import CameraLive, round_significant
from platebridge.pod.supervisor import CameraState
from tests.core.test_fmp4 import NON_SYNC, SYNC, VIDEO, box, fragment, init_segment, traf, trex
from tests.pod.test_heartbeat import make_config

INIT = init_segment(VIDEO, trexes=(trex(1, NON_SYNC),))
PROBE = MediaInfo("h264", "High", 1920, 1080, 25.0, "pcm_alaw", 8000)
CAMERA = make_config().cameras[0]


def frame(size: int, key: bool) -> bytes:
    """A fragment of exactly ``size`` bytes (its mdat padded)."""
    head = fragment(traf(1, first=SYNC) if key else traf(1))[:-28]  # without its 28-byte mdat
    return head + box("mdat", b"\x00" * (size - len(head) - 8))


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def feed(live: CameraLive, clock: Clock, seconds: float, kbps: float, gop_s: float = 2.0) -> None:
    """``seconds`` of 25 fps fragments at ``kbps``, a keyframe every ``gop_s`` seconds."""
    size = int(kbps * 1000 / 8 / 25)
    gop = round(gop_s * 25)
    for i in range(round(seconds * 25)):
        assert live.feed(live_splitter(live), frame(size, i % gop == 0))
        clock.now += 0.04


_SPLITTERS: dict[int, Splitter] = {}


def live_splitter(live: CameraLive) -> Splitter:
    return _SPLITTERS.setdefault(id(live), Splitter())


def new_live(clock: Clock) -> CameraLive:
    live = CameraLive("gate-camera-1", clock=clock)
    live.begin_run()
    assert live.feed(live_splitter(live), INIT)
    return live


def state_with(live: CameraLive | None, probe: MediaInfo | None = PROBE) -> CameraState:
    state = CameraState("gate-camera-1", "Main Gate Camera", "active")
    state.media = probe
    state.note = "audio pcm_alaw converted to AAC" if probe else None
    state.live = live
    return state


def test_round_significant() -> None:
    assert [round_significant(v) for v in (0, 0.4, 7.6, 987, 4137.2, 41490)] == [
        0,
        0,
        7,
        990,
        4100,
        41000,
    ]


def test_media_from_probe_and_live_output() -> None:
    clock = Clock()
    live = new_live(clock)
    feed(
        live,
        clock,
        16,  # 3 keyframe gaps: measured (pod/live.py MIN_INTERVALS)
        kbps=4000,
        gop_s=4.0,
    )
    media = camera_media(CAMERA, state_with(live))
    assert media is not None
    assert media.model_dump(exclude_none=True) == {
        "video_codec": "h264",
        "video_profile": "High",
        "width": 1920,
        "height": 1080,
        "fps": 25.0,
        "keyframe_interval": 4.0,
        "bitrate_kbps": 4000,
        "audio_codec": "pcm_alaw",
        "audio": "converted",
        "note": "audio pcm_alaw converted to AAC",
        "codecs": "avc1.640028",
        "transcoded": False,
    }


def test_measured_values_are_stable_across_beats() -> None:
    """A VBR camera wandering ±10 % and a keyframe clock jittering by a frame report the same
    values beat after beat: the heartbeat's digest (the portal's fast path) stays the same."""
    clock = Clock()
    live = new_live(clock)
    feed(live, clock, 10, kbps=4000)
    seen = set()
    for kbps in (4300, 3700, 4200, 3800, 4400, 3600):
        feed(live, clock, 2, kbps=kbps, gop_s=2.04 if kbps > 4000 else 1.96)
        media = camera_media(CAMERA, state_with(live))
        assert media is not None
        seen.add((media.bitrate_kbps, media.keyframe_interval))
    assert len(seen) == 1, seen
    ((kbps, interval),) = seen
    assert 3800 <= kbps <= 4200 and interval == 2.0
    payloads = {
        build_payload(make_config(), {"gate-camera-1": state_with(live)}).model_dump_json()
        for _ in range(3)
    }
    assert len(payloads) == 1
    # A real change (the camera now sends 8 Mbit/s) is reported.
    feed(live, clock, 30, kbps=8000)
    media = camera_media(CAMERA, state_with(live))
    assert media is not None and media.bitrate_kbps == 8000


def test_audio_handling_and_transcoding_seen() -> None:
    clock = Clock()
    live = new_live(clock)  # its init segment is H.264 (avc1)
    hevc = MediaInfo("hevc", "Main", 1920, 1080, 25.0, None, None)
    media = camera_media(CAMERA, state_with(live, hevc))
    assert media is not None and media.audio == "none" and media.transcoded is True
    opus = MediaInfo("h264", "Main", 640, 360, 25.0, "opus", 48000)
    media = camera_media(CAMERA, state_with(live, opus))
    assert media is not None and media.audio == "dropped" and media.transcoded is False
    aac = MediaInfo("h264", "Main", 640, 360, 25.0, "aac", 16000)
    assert camera_media(CAMERA, state_with(None, aac)).audio == "aac"  # type: ignore[union-attr]


def test_values_that_do_not_fit_are_left_out() -> None:
    odd = MediaInfo("h264", "Hi<gh>", 99999, 1080, 25.0, None, None)
    media = camera_media(CAMERA, state_with(None, odd))
    assert media is not None and media.video_profile is None and media.width is None
    assert media.height == 1080


def test_nothing_known_means_no_media() -> None:
    assert camera_media(CAMERA, None) is None
    assert camera_media(CAMERA, state_with(None, None)) is None
    payload = build_payload(make_config(), {"gate-camera-1": state_with(None, None)})
    assert "media" not in payload.model_dump(exclude_none=True)["cameras"][0]


def test_payload_with_media_passes_the_portals_model() -> None:
    clock = Clock()
    live = new_live(clock)
    feed(live, clock, 5, kbps=1000)
    payload = build_payload(make_config(), {"gate-camera-1": state_with(live)})
    data = payload.model_dump(mode="json", exclude_none=True)
    assert data["cameras"][0]["media"]["bitrate_kbps"] == 1000
    assert HeartbeatRequest.model_validate(data).cameras[0].media == payload.cameras[0].media  # type: ignore[index]


def test_substream_media_and_configured_transcoding() -> None:
    clock = Clock()
    main, sub = state_with(new_live(clock)), state_with(new_live(clock))
    sub.media = MediaInfo("h264", "Main", 640, 360, 25.0, None, None)
    main.sub = sub
    cam = build_payload(make_config(), {"gate-camera-1": main}).cameras[0]  # type: ignore[index]
    assert cam.media is not None and cam.media.width == 1920
    assert cam.sub_media is not None and cam.sub_media.width == 640
    assert cam.sub_media.audio == "none" and cam.sub_media.codecs == "avc1.640028"
    # Not watched yet (the substream runs on demand): nothing known, nothing sent.
    main.sub = CameraState("gate-camera-1", "Main Gate Camera")
    assert build_payload(make_config(), {"gate-camera-1": main}).cameras[0].sub_media is None  # type: ignore[index]
    camera = CAMERA.model_copy(update={"transcode": "h264"})
    media = camera_media(camera, state_with(None))
    assert media is not None and media.transcoded is True
