"""The ffmpeg command line is a pure function of the config."""

from __future__ import annotations

from pathlib import Path

from platebridge.pod.config import parse_config
from platebridge.pod.ffmpeg import SEGMENT_NAME, hls_argv, probe_argv, snapshot_argv


def config(**extra: object):  # type: ignore[no-untyped-def]
    raw = {
        "pod_id": "p",
        "portal_url": "http://portal",
        "api_key": "pbk_x",
        "stream_token_secret": "x" * 20,
        "camera_id": "cam",
        "camera_rtsp_url": "rtsp://u:pw@10.0.0.5:554/live",
        "hls_dir": "/var/hls",
    }
    raw.update(extra)
    return parse_config(raw, env={})


def opt(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_hls_argv_copies_over_tcp_into_short_segments() -> None:
    cfg = config(hls_segment_seconds=1.5, hls_list_size=5, rtsp_timeout=4)
    argv = hls_argv(cfg, cfg.cameras[0])
    assert argv[0] == "ffmpeg"
    assert opt(argv, "-rtsp_transport") == "tcp"
    assert opt(argv, "-timeout") == "4000000"
    assert opt(argv, "-i") == "rtsp://u:pw@10.0.0.5:554/live"
    assert opt(argv, "-c") == "copy"
    assert "-vcodec" not in argv and "libx264" not in argv
    assert opt(argv, "-f") == "hls"
    assert opt(argv, "-hls_time") == "1.5"
    assert opt(argv, "-hls_list_size") == "5"
    flags = opt(argv, "-hls_flags").split("+")
    assert {"delete_segments", "temp_file", "independent_segments"} <= set(flags)
    assert opt(argv, "-hls_segment_type") == "mpegts"
    assert opt(argv, "-hls_segment_filename") == "/var/hls/cam/seg_%d.ts"
    assert argv[-1] == "/var/hls/cam/index.m3u8"
    # timeout is an input option: it must come before -i
    assert argv.index("-timeout") < argv.index("-i")


def test_hls_argv_is_deterministic_and_per_camera() -> None:
    cfg = config(cameras=[{"camera_id": "b", "name": "B", "rtsp_url": "rtsp://10.0.0.6/x"}])
    a, b = cfg.cameras
    assert hls_argv(cfg, a) == hls_argv(cfg, a)
    assert hls_argv(cfg, b)[-1] == "/var/hls/b/index.m3u8"
    assert "rtsp://10.0.0.6/x" in hls_argv(cfg, b)


def test_custom_ffmpeg_path() -> None:
    cfg = config(ffmpeg_path="/opt/ffmpeg/bin/ffmpeg")
    assert hls_argv(cfg, cfg.cameras[0])[0] == "/opt/ffmpeg/bin/ffmpeg"


def test_snapshot_and_probe_argv() -> None:
    argv = snapshot_argv("ffmpeg", Path("/var/hls/cam/seg_7.ts"))
    assert opt(argv, "-i") == "/var/hls/cam/seg_7.ts" and opt(argv, "-frames:v") == "1"
    assert argv[-1] == "pipe:1"
    cfg = config()
    probe = probe_argv("ffprobe", cfg.cameras[0], 3)
    assert opt(probe, "-timeout") == "3000000" and probe[-1] == cfg.cameras[0].url


def test_segment_name_pattern_is_strict() -> None:
    assert SEGMENT_NAME.match("seg_1795655141.ts")
    for bad in ("seg_1.ts.tmp", "../seg_1.ts", "seg_.ts", "index.m3u8", "seg_1.ts/x", "seg_1.TS"):
        assert not SEGMENT_NAME.match(bad)
