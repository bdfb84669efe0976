"""The ffmpeg command line is a pure function of the config."""

from __future__ import annotations

from pathlib import Path

from platebridge.pod.config import parse_config
from platebridge.pod.ffmpeg import (
    SEGMENT_NAME,
    MediaInfo,
    audio_plan,
    camera_argv,
    media_probe_argv,
    parse_media_probe,
    probe_argv,
    rtsp_input,
    snapshot_argv,
)


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


def outputs(argv: list[str]) -> tuple[list[str], list[str], list[str]]:
    """(input part, HLS output, live output) of a camera argv."""
    url = argv.index("-i") + 2
    hls_end = argv.index("/var/hls/cam/index.m3u8") + 1
    return argv[:url], argv[url:hls_end], argv[hls_end:]


def test_hls_argv_copies_over_tcp_into_short_segments() -> None:
    cfg = config(hls_segment_seconds=1.5, hls_list_size=5, rtsp_timeout=4)
    argv = camera_argv(cfg, cfg.cameras[0], live=False)
    assert argv[0] == "ffmpeg"
    assert opt(argv, "-rtsp_transport") == "tcp"
    assert opt(argv, "-timeout") == "4000000"
    assert opt(argv, "-i") == "rtsp://u:pw@10.0.0.5:554/live"
    assert opt(argv, "-c:v") == "copy"
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
    assert camera_argv(cfg, a) == camera_argv(cfg, a)
    assert camera_argv(cfg, b, live=False)[-1] == "/var/hls/b/index.m3u8"
    assert "rtsp://10.0.0.6/x" in camera_argv(cfg, b)


def test_custom_ffmpeg_path() -> None:
    cfg = config(ffmpeg_path="/opt/ffmpeg/bin/ffmpeg")
    assert camera_argv(cfg, cfg.cameras[0])[0] == "/opt/ffmpeg/bin/ffmpeg"


def test_snapshot_and_probe_argv() -> None:
    argv = snapshot_argv("ffmpeg", Path("/var/hls/cam/seg_7.ts"))
    assert opt(argv, "-i") == "/var/hls/cam/seg_7.ts" and opt(argv, "-frames:v") == "1"
    assert argv[-1] == "pipe:1"
    cfg = config()
    probe = probe_argv("ffprobe", cfg.cameras[0], 3)
    assert opt(probe, "-timeout") == "3000000" and opt(probe, "-i") == cfg.cameras[0].url


def test_segment_name_pattern_is_strict() -> None:
    assert SEGMENT_NAME.match("seg_1795655141.ts")
    for bad in ("seg_1.ts.tmp", "../seg_1.ts", "seg_.ts", "index.m3u8", "seg_1.ts/x", "seg_1.TS"):
        assert not SEGMENT_NAME.match(bad)


def test_one_input_two_outputs_live_fmp4_on_stdout() -> None:
    cfg = config()
    argv = camera_argv(cfg, cfg.cameras[0], MediaInfo(video_codec="h264"))
    inp, hls, live = outputs(argv)
    assert argv.count("-i") == 1 and argv.count(cfg.cameras[0].url) == 1  # one RTSP session
    assert "-rtsp_transport" in inp and "-map" not in inp
    assert opt(hls, "-f") == "hls" and opt(live, "-f") == "mp4"
    for out in (hls, live):
        assert opt(out, "-map") == "0:v:0" and opt(out, "-c:v") == "copy"
        assert "-c:a" not in out  # no audio on this camera
    flags = set(opt(live, "-movflags").split("+"))
    assert {"empty_moov", "default_base_moof", "frag_keyframe"} <= flags
    assert opt(live, "-frag_duration") == "1" and opt(live, "-flush_packets") == "1"
    assert opt(live, "-max_interleave_delta") == "20000" and "-max_interleave_delta" not in hls
    assert live[-1] == "pipe:1"
    assert "-tag:v" not in argv


def test_h265_is_tagged_hvc1_in_the_live_output_only() -> None:
    cfg = config()
    _, hls, live = outputs(camera_argv(cfg, cfg.cameras[0], MediaInfo(video_codec="hevc")))
    assert opt(live, "-tag:v") == "hvc1" and "-tag:v" not in hls


def maps_and_audio(argv: list[str]) -> tuple[list[str], list[str]]:
    maps = [argv[i + 1] for i, a in enumerate(argv) if a == "-map"]
    codecs = [argv[i + 1] for i, a in enumerate(argv) if a == "-c:a"]
    return maps, codecs


def test_audio_aac_copied_g711_converted_other_dropped() -> None:
    cfg = config()
    cam = cfg.cameras[0]
    cases = {
        "aac": (["0:v:0", "0:a:0"] * 2, ["copy", "copy"], None),
        "pcm_alaw": (["0:v:0", "0:a:0"] * 2, ["aac", "aac"], "converted to AAC"),
        "pcm_mulaw": (["0:v:0", "0:a:0"] * 2, ["aac", "aac"], "converted to AAC"),
        "opus": (["0:v:0"] * 2, [], "not supported"),
        None: (["0:v:0"] * 2, [], None),
    }
    for codec, (maps, codecs, note) in cases.items():
        media = MediaInfo(video_codec="h264", audio_codec=codec)
        assert maps_and_audio(camera_argv(cfg, cam, media)) == (maps, codecs), codec
        got = audio_plan(media)[1]
        assert (got is None) if note is None else (got is not None and note in got)
    # the probe failed: whatever audio there is becomes AAC, and a camera without audio is fine
    assert maps_and_audio(camera_argv(cfg, cam, None)) == (["0:v:0", "0:a:0?"] * 2, ["aac"] * 2)


def test_live_output_can_be_turned_off() -> None:
    cfg = config(live_output=False)
    argv = camera_argv(cfg, cfg.cameras[0], None, live=cfg.live_output)
    assert "pipe:1" not in argv and argv[-1] == "/var/hls/cam/index.m3u8"


def test_media_probe_parse() -> None:
    cfg = config()
    argv = media_probe_argv("ffprobe", cfg.cameras[0], 5)
    assert opt(argv, "-of") == "json" and opt(argv, "-i") == cfg.cameras[0].url
    text = """{"streams": [
        {"codec_type": "video", "codec_name": "hevc", "profile": "Main", "width": 1920,
         "height": 1080, "avg_frame_rate": "25/1"},
        {"codec_type": "audio", "codec_name": "pcm_alaw", "sample_rate": "8000",
         "avg_frame_rate": "0/0"}]}"""
    assert parse_media_probe(text) == MediaInfo("hevc", "Main", 1920, 1080, 25.0, "pcm_alaw", 8000)
    assert parse_media_probe("not json") == MediaInfo()
    assert parse_media_probe('{"streams": [{"codec_type": "video", "avg_frame_rate": "0/0"}]}') == (
        MediaInfo()
    )


def test_every_rtsp_input_is_built_by_one_helper() -> None:
    """ffmpeg, both probes and the substream: the same TCP transport and timeout before -i."""
    cfg = config(rtsp_timeout=7)
    cam = cfg.cameras[0]
    expected = rtsp_input(cam.url, 7)
    assert expected == ["-rtsp_transport", "tcp", "-timeout", "7000000", "-i", cam.url]
    for argv in (
        camera_argv(cfg, cam),
        media_probe_argv("ffprobe", cam, 7),
        probe_argv("ffprobe", cam, 7),
    ):
        at = argv.index("-rtsp_transport")
        assert argv[at : at + 6] == expected
        assert argv.count("-i") == 1
