"""The recording output of camera_argv: a pure function of the config, never spawned."""

from __future__ import annotations

import pytest

from platebridge.pod.config import ConfigError, parse_config
from platebridge.pod.ffmpeg import MediaInfo, camera_argv
from platebridge.pod.recording.scanner import DAY_DIR, FILE_NAME

BASE = {
    "pod_id": "p",
    "portal_url": "http://portal",
    "api_key": "pbk_x",
    "stream_token_secret": "x" * 20,
    "hls_dir": "/var/hls",
    "recording_dir": "/srv/rec",
    "recording_file_seconds": 30,
}


def config(transcode: str = "off", **extra: object):  # type: ignore[no-untyped-def]
    cam = {"camera_id": "cam", "name": "Cam", "rtsp_url": "rtsp://10.0.0.5/live"}
    return parse_config({**BASE, **extra, "cameras": [{**cam, "transcode": transcode}]}, env={})


def test_copy_mode_records_a_third_output_of_the_same_session() -> None:
    cfg = config()
    media = MediaInfo(video_codec="h264", audio_codec="aac")
    argv = camera_argv(cfg, cfg.cameras[0], media, record=True)
    assert argv.count("-i") == 1  # one RTSP session
    assert argv[-1] == "/srv/rec/cam/%Y-%m-%d/%H%M%S.mp4"
    rec = argv[argv.index("pipe:1") + 1 :]
    assert rec[:8] == ["-map", "0:v:0", "-map", "0:a:0", "-c:a", "copy", "-c:v", "copy"]
    assert rec[rec.index("-f") + 1] == "segment"
    assert rec[rec.index("-segment_time") + 1] == "30"
    assert rec[rec.index("-segment_atclocktime") + 1] == "1"
    assert rec[rec.index("-strftime") + 1] == "1"
    fmt = rec[rec.index("-segment_format_options") + 1]
    assert "frag_duration=1000000" in fmt and "write_prft=wallclock" in fmt
    assert "flush_packets=1" in fmt  # every fragment reaches the file at once (crash safety)
    assert "empty_moov" in fmt and "frag_keyframe" in fmt
    # without record the argv is what issue 12 had
    plain = camera_argv(cfg, cfg.cameras[0], media)
    assert plain == argv[: argv.index("pipe:1") + 1]
    assert "segment" not in plain


def test_hevc_is_tagged_hvc1_in_the_recording_too() -> None:
    cfg = config()
    argv = camera_argv(cfg, cfg.cameras[0], MediaInfo(video_codec="hevc"), record=True)
    rec = argv[argv.index("pipe:1") + 1 :]
    assert rec[rec.index("-tag:v") + 1] == "hvc1"


def test_transcode_records_as_a_tee_slave_that_may_fail_alone() -> None:
    cfg = config("h264")
    media = MediaInfo(video_codec="hevc", width=1920, height=1080, fps=25)
    argv = camera_argv(cfg, cfg.cameras[0], media, record=True)
    assert argv.count("libx264") == 1  # one encode for all three outputs
    slaves = argv[-1].split("|")
    assert len(slaves) == 3
    assert slaves[2].startswith("[f=segment:")
    assert "onfail=ignore" in slaves[2]
    assert "frag_duration=1000000\\\\:write_prft=wallclock" in slaves[2]
    assert slaves[2].endswith("]/srv/rec/cam/%Y-%m-%d/%H%M%S.mp4")
    no_live = camera_argv(cfg, cfg.cameras[0], media, live=False, record=True)
    assert len(no_live[-1].split("|")) == 2


def test_percent_in_the_directory_is_not_a_strftime_field() -> None:
    cfg = config(recording_dir="/srv/100%/rec")
    argv = camera_argv(cfg, cfg.cameras[0], None, record=True)
    assert argv[-1] == "/srv/100%%/rec/cam/%Y-%m-%d/%H%M%S.mp4"


def test_names_the_scanner_accepts() -> None:
    assert DAY_DIR.match("2026-12-02") and not DAY_DIR.match("2026-12-2")
    assert FILE_NAME.match("235959.mp4") and FILE_NAME.match("235959-2.mp4")
    assert not FILE_NAME.match("../x.mp4") and not FILE_NAME.match("235959.mp4.tmp")


def test_config_bounds_and_defaults() -> None:
    cfg = config()
    assert cfg.cameras[0].record is True and cfg.cameras[0].retention_days is None
    assert cfg.retention_days == 30 and cfg.retention_min_free_percent == 10
    for key, value in [
        ("recording_file_seconds", 5),
        ("recording_file_seconds", 601),
        ("retention_days", 0),
        ("retention_min_free_percent", 95),
        ("recording_retention", 3),
    ]:
        with pytest.raises(ConfigError, match=key):
            config(**{key: value})
