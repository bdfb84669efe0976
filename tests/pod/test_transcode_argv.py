"""transcode: h264 and substreams: ffmpeg command lines as pure functions of the config."""

from __future__ import annotations

import pytest

from platebridge.pod.config import ConfigError, parse_config
from platebridge.pod.ffmpeg import MediaInfo, camera_argv, media_probe_argv, sub_argv
from platebridge.pod.transcode import (
    Encode,
    parse_encoders,
    select_h264_encoder,
    tee_slave,
    video_args,
)
from tests.pod.test_ffmpeg_argv import opt

HEVC_1080 = MediaInfo("hevc", "Main", 1920, 1080, 25.0, "pcm_alaw", 8000)
SUB_URL = "rtsp://u:subpw@10.0.0.5:554/sub"


def without_flat(**extra: object):  # type: ignore[no-untyped-def]
    raw = {
        "pod_id": "p",
        "portal_url": "http://portal",
        "api_key": "pbk_x",
        "stream_token_secret": "x" * 20,
        "hls_dir": "/var/hls",
    }
    return parse_config(raw | extra, env={})


def cam_config(**camera: object):  # type: ignore[no-untyped-def]
    base = {"camera_id": "cam", "name": "Cam", "rtsp_url": "rtsp://u:pw@10.0.0.5:554/live"}
    return without_flat(cameras=[base | camera])


def test_transcode_defaults_off_and_copy_is_unchanged() -> None:
    cfg = cam_config()
    cam = cfg.cameras[0]
    assert cam.transcode == "off" and cam.sub_rtsp_url is None and cfg.h264_encoder == "auto"
    argv = camera_argv(cfg, cam, HEVC_1080)
    assert "libx264" not in argv and "tee" not in argv and argv.count("copy") == 2


def test_h264_transcode_encodes_once_into_a_tee_of_both_outputs() -> None:
    cfg = cam_config(transcode="h264")
    argv = camera_argv(cfg, cfg.cameras[0], HEVC_1080)
    assert argv.count("-i") == 1 and argv.count("-c:v") == 1  # one input, ONE video encoder
    assert opt(argv, "-c:v") == "libx264"
    assert opt(argv, "-preset") == "veryfast" and opt(argv, "-tune") == "zerolatency"
    assert opt(argv, "-force_key_frames") == "expr:gte(t,n_forced*1)"
    assert opt(argv, "-g") == "50" and opt(argv, "-sc_threshold") == "0"
    assert opt(argv, "-b:v") == "4000k" and opt(argv, "-maxrate") == "4000k"
    assert opt(argv, "-vf") == "format=yuv420p"
    assert opt(argv, "-c:a") == "aac" and argv.count("-c:a") == 1  # G.711 still to AAC, once
    assert opt(argv, "-flags:v") == "+global_header"  # MP4 needs the parameter sets up front
    assert opt(argv, "-f") == "tee" and argv.count("-f") == 1
    hls, live = argv[-1].split("|")
    assert hls.startswith("[f=hls:") and hls.endswith("]/var/hls/cam/index.m3u8")
    assert "hls_segment_filename=/var/hls/cam/seg_%d.ts" in hls
    assert "bsfs/v=dump_extra=freq=keyframe" in hls  # TS repeats them before keyframes
    assert live.startswith("[f=mp4:movflags=empty_moov+default_base_moof+frag_keyframe:")
    assert "frag_duration=1" in live and "flush_packets=1" in live and live.endswith("]pipe:1")
    assert "-tag:v" not in argv  # H.264 now: no hvc1 tag


def test_transcode_without_live_output_is_one_hls_output() -> None:
    cfg = cam_config(transcode="h264")
    argv = camera_argv(cfg, cfg.cameras[0], HEVC_1080, live=False)
    assert "tee" not in argv and opt(argv, "-f") == "hls" and argv[-1] == "/var/hls/cam/index.m3u8"
    assert opt(argv, "-c:v") == "libx264" and "-flags:v" not in argv


def test_scale_and_bitrate_follow_the_config_and_the_output_height() -> None:
    cfg = cam_config(transcode="h264", transcode_width=1280)
    argv = camera_argv(cfg, cfg.cameras[0], HEVC_1080)
    assert opt(argv, "-vf") == "scale='min(1280,iw)':-2,format=yuv420p"
    assert opt(argv, "-b:v") == "2500k"  # 720p
    cfg = cam_config(transcode="h264", transcode_bitrate=1500)
    assert opt(camera_argv(cfg, cfg.cameras[0], HEVC_1080), "-b:v") == "1500k"
    assert Encode(640, 360).kbps() == 800 and Encode(3840, 2160).kbps() == 8000
    assert Encode(1920, 1080, scale_width=4000).output_size() == (1920, 1080)  # never up
    assert Encode().kbps() == 4000  # unknown size (probe failed)
    # no probe: no fixed GOP length, the time-forced keyframes remain
    argv = camera_argv(cfg, cfg.cameras[0], None)
    assert "-g" not in argv and opt(argv, "-force_key_frames").startswith("expr:")


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ({"transcode": "h265"}, "transcode"),
        ({"transcode": True}, "transcode"),
        ({"transcode_width": 100}, "transcode_width"),
        ({"transcode_bitrate": 50_000}, "transcode_bitrate"),
        ({"sub_rtsp_url": "http://10.0.0.5/sub"}, "sub_rtsp_url"),
        ({"sub_rtsp_url": "rtsp://10.0.0.5/a b"}, "sub_rtsp_url"),
    ],
)
def test_bad_camera_values_name_the_key(extra: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        cam_config(**extra)
    assert key in str(err.value) and "10.0.0.5" not in str(err.value)


def test_pod_level_keys_are_bounded() -> None:
    for extra in ({"substream_idle_seconds": 0}, {"h264_encoder": "nvenc"}):
        with pytest.raises(ConfigError) as err:
            without_flat(
                cameras=[{"camera_id": "c", "name": "C", "rtsp_url": "rtsp://h/x"}], **extra
            )
        assert next(iter(extra)) in str(err.value)


def test_sub_url_secret_is_redacted_and_never_echoed() -> None:
    cfg = cam_config(sub_rtsp_url=SUB_URL)
    cam = cfg.cameras[0]
    assert cam.sub_url == SUB_URL and "subpw" in cfg.secrets and "pw" in cfg.secrets
    assert "subpw" not in repr(cam) and "subpw" not in str(cam.model_dump())
    with pytest.raises(ConfigError) as err:
        cam_config(sub_rtsp_url="ftp://u:subpw@10.0.0.5/sub")
    assert "subpw" not in str(err.value)


def test_substream_argv_live_only_its_own_session_no_audio() -> None:
    cfg = cam_config(sub_rtsp_url=SUB_URL)
    cam = cfg.cameras[0]
    argv = sub_argv(cfg, cam, MediaInfo("h264", "Main", 640, 360, 25.0, "pcm_alaw", 8000))
    assert opt(argv, "-i") == SUB_URL and argv.count("-i") == 1 and cam.url not in argv
    assert opt(argv, "-rtsp_transport") == "tcp" and "-an" in argv
    assert opt(argv, "-map") == "0:v:0" and opt(argv, "-c:v") == "copy"
    assert "hls" not in argv and opt(argv, "-f") == "mp4" and argv[-1] == "pipe:1"
    assert "-tag:v" not in argv
    hevc = sub_argv(cfg, cam, MediaInfo("hevc"))
    assert opt(hevc, "-tag:v") == "hvc1"
    assert opt(media_probe_argv("ffprobe", cam, 5, cam.sub_url), "-i") == SUB_URL
    # with transcode the substream is encoded at its own size (the main's scale is not used)
    cfg = cam_config(sub_rtsp_url=SUB_URL, transcode="h264", transcode_width=1280)
    argv = sub_argv(cfg, cfg.cameras[0], MediaInfo("hevc", None, 640, 360, 25.0))
    assert opt(argv, "-c:v") == "libx264" and opt(argv, "-vf") == "format=yuv420p"
    assert opt(argv, "-b:v") == "800k" and "-tag:v" not in argv and "tee" not in argv
    with pytest.raises(ValueError, match="no substream"):
        sub_argv(cfg, cam_config().cameras[0])


LISTING = """Encoders:
 V..... = Video
 A..... = Audio
 ------
 V....D libx264              libx264 H.264 / AVC / MPEG-4 AVC / MPEG-4 part 10 (codec h264)
 V..... h264_qsv             H.264 (Intel Quick Sync Video acceleration) (codec h264)
 V..... h264_v4l2m2m         V4L2 mem2mem H.264 encoder wrapper (codec h264)
 V....D h264_vaapi           H.264/AVC (VAAPI) (codec h264)
 A....D aac                  AAC (Advanced Audio Coding)
"""


def test_encoder_selection_needs_the_listing_and_the_device() -> None:
    listed = parse_encoders(LISTING)
    assert {"libx264", "h264_qsv", "h264_v4l2m2m", "h264_vaapi", "aac"} == listed
    assert select_h264_encoder("auto", listed, []) == "libx264"  # listed is not present
    assert select_h264_encoder("auto", listed, ["/dev/dri/renderD128"]) == "h264_vaapi"
    both = ["/dev/dri/renderD128", "/dev/video11"]
    assert select_h264_encoder("auto", listed, both) == "h264_v4l2m2m"
    assert select_h264_encoder("auto", {"libx264"}, both) == "libx264"
    assert select_h264_encoder("h264_qsv", set(), []) == "h264_qsv"  # configured: as said
    assert select_h264_encoder("libx264", listed, both) == "libx264"


def test_hardware_encoder_argv_untested_on_hardware() -> None:
    """The documented ffmpeg options per encoder (no hardware here to run them on)."""
    enc = Encode(1920, 1080, scale_width=1280, fps=25.0)
    vaapi = video_args("h264_vaapi", enc)
    assert opt(vaapi, "-vf") == "scale='min(1280,iw)':-2,format=nv12,hwupload"
    assert opt(vaapi, "-c:v") == "h264_vaapi" and opt(vaapi, "-bf") == "0"
    cfg = cam_config(transcode="h264")
    argv = camera_argv(cfg, cfg.cameras[0], HEVC_1080, encoder="h264_vaapi")
    assert opt(argv, "-vaapi_device") == "/dev/dri/renderD128"
    assert argv.index("-vaapi_device") < argv.index("-i")
    qsv = video_args("h264_qsv", enc)
    assert opt(qsv, "-c:v") == "h264_qsv" and opt(qsv, "-look_ahead") == "0"
    assert opt(qsv, "-forced_idr") == "1" and opt(qsv, "-vf").endswith("format=nv12")
    m2m = video_args("h264_v4l2m2m", enc)
    assert opt(m2m, "-c:v") == "h264_v4l2m2m" and opt(m2m, "-b:v") == "2500k"
    for args in (vaapi, qsv, m2m):
        assert opt(args, "-force_key_frames") == "expr:gte(t,n_forced*1)"
    assert "-vaapi_device" not in camera_argv(cfg, cfg.cameras[0], HEVC_1080)


def test_tee_slave_escapes_special_characters() -> None:
    slave = tee_slave(["-f", "hls", "-hls_segment_filename", "/a:b/seg_%d.ts"], "/a:b/x|y.m3u8")
    assert slave == r"[f=hls:hls_segment_filename=/a\\:b/seg_%d.ts]/a:b/x\|y.m3u8"
