"""Config parsing: flat and list forms, ${ENV} expansion, errors naming the key, never values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from platebridge import __version__
from platebridge.pod.config import ConfigError, load_config, parse_config

SECRET = "s" * 32


def flat(**extra: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "pod_id": "main-gate-pod",
        "portal_url": "https://portal.example/",
        "api_key": "pbk_abc",
        "stream_token_secret": SECRET,
        "camera_id": "gate-camera-1",
        "camera_name": "Main Gate Camera",
        "camera_rtsp_url": "rtsp://192.168.1.50:554/stream",
        "camera_position": "main entrance",
    }
    raw.update(extra)
    return raw


def test_flat_spec_keys_become_one_camera_with_defaults() -> None:
    cfg = parse_config(flat(), env={})
    assert [c.camera_id for c in cfg.cameras] == ["gate-camera-1"]
    cam = cfg.cameras[0]
    assert (cam.name, cam.position, cam.url) == (
        "Main Gate Camera",
        "main entrance",
        "rtsp://192.168.1.50:554/stream",
    )
    assert cfg.portal_url == "https://portal.example"
    assert (cfg.listen_host, cfg.listen_port, cfg.advertise_address) == ("0.0.0.0", 8000, "auto")
    assert cfg.heartbeat_interval == 60
    assert cfg.firmware_version == __version__


def test_camera_list_and_flat_camera_combine() -> None:
    raw = flat(cameras=[{"camera_id": "side", "name": "Side", "rtsp_url": "rtsp://10.0.0.2/s"}])
    cfg = parse_config(raw, env={})
    assert [c.camera_id for c in cfg.cameras] == ["gate-camera-1", "side"]


def test_list_only_config() -> None:
    raw = flat()
    for key in ("camera_id", "camera_name", "camera_rtsp_url", "camera_position"):
        raw.pop(key)
    raw["cameras"] = [
        {"camera_id": "a", "name": "A", "rtsp_url": "rtsp://10.0.0.2/a", "position": "north"},
        {"camera_id": "b", "name": "B", "rtsp_url": "rtsps://10.0.0.3/b"},
    ]
    cfg = parse_config(raw, env={})
    assert [(c.camera_id, c.position) for c in cfg.cameras] == [("a", "north"), ("b", "")]


def test_env_expansion_with_default_and_missing_variable() -> None:
    raw = flat(
        camera_rtsp_url="rtsp://admin:${CAM_PASSWORD}@192.168.1.50/stream",
        api_key="${POD_KEY:-pbk_default}",
    )
    cfg = parse_config(raw, env={"CAM_PASSWORD": "p@ss"})
    assert cfg.cameras[0].url == "rtsp://admin:p@ss@192.168.1.50/stream"
    assert cfg.api_key.get_secret_value() == "pbk_default"
    with pytest.raises(ConfigError, match=r"camera_rtsp_url: environment variable CAM_PASSWORD"):
        parse_config(raw, env={})


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ({"listen_prot": 8000}, "listen_prot: unknown key"),
        (
            {"cameras": [{"camera_id": "x", "name": "X", "rtsp_url": "rtsp://h/", "fps": 5}]},
            "cameras[1].fps: unknown key",
        ),
        ({"listen_port": 70000}, "listen_port:"),
        ({"heartbeat_interval": 0.5}, "heartbeat_interval:"),
        ({"advertise_address": "my-laptop"}, "advertise_address:"),
        ({"portal_url": "ftp://portal"}, "portal_url:"),
        ({"camera_rtsp_url": "http://cam/stream"}, "camera_rtsp_url:"),
        ({"camera_id": "../etc"}, "camera_id:"),
        ({"stream_token_secret": "short"}, "stream_token_secret:"),
        ({"hls_segment_seconds": 10}, "hls_segment_seconds:"),
        ({"cors_origins": ["https://portal.example/path"]}, "cors_origins:"),
        ({"tls_cert": "/nonexistent.pem"}, "tls_cert and tls_key"),
    ],
)
def test_bad_values_name_the_key(extra: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(flat(**extra), env={})
    assert key in str(info.value)


def test_missing_required_key() -> None:
    raw = flat()
    del raw["api_key"]
    with pytest.raises(ConfigError, match="api_key: is required"):
        parse_config(raw, env={})


def test_duplicate_camera_ids_rejected() -> None:
    raw = flat(cameras=[{"camera_id": "gate-camera-1", "name": "Dup", "rtsp_url": "rtsp://h/"}])
    with pytest.raises(ConfigError, match=r"cameras: .*unique"):
        parse_config(raw, env={})


def test_errors_never_print_secret_values() -> None:
    raw = flat(
        api_key=["pbk_SECRETKEY"],
        stream_token_secret="tiny-SECRET",
        camera_rtsp_url="http://admin:SECRETPW@cam/stream",
    )
    with pytest.raises(ConfigError) as info:
        parse_config(raw, env={})
    message = str(info.value)
    assert "api_key" in message and "camera_rtsp_url" in message
    assert "SECRET" not in message


def test_load_config_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("pod_id: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(bad)


def test_secrets_include_rtsp_password() -> None:
    cfg = parse_config(flat(camera_rtsp_url="rtsp://u:campw123@10.0.0.9/s"), env={})
    assert {"pbk_abc", SECRET, "campw123"} <= set(cfg.secrets)


def test_documented_example_config_is_valid() -> None:
    example = Path(__file__).resolve().parents[2] / "docs" / "pod-config.example.yaml"
    env = {
        "PLATEBRIDGE_API_KEY": "pbk_x",
        "PLATEBRIDGE_STREAM_SECRET": "z" * 20,
        "CAM_PASSWORD": "p",
    }
    cfg = load_config(example, env=env)
    assert [c.camera_id for c in cfg.cameras] == ["gate-camera-1", "exit-camera"]
