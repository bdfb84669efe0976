"""CLI in-process: dry-run payload, config errors (exit 2) without secrets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from platebridge.pod.cli import main


def write(tmp: Path, **extra: object) -> Path:
    raw = {
        "pod_id": "main-gate-pod",
        "portal_url": "http://127.0.0.1:9",
        "api_key": "pbk_clisecret",
        "stream_token_secret": "y" * 24,
        "camera_id": "gate-camera-1",
        "camera_name": "Main Gate",
        "camera_rtsp_url": "rtsp://admin:${CLI_CAM_PW}@10.0.0.5/stream",
        "advertise_address": "10.0.0.9",
    }
    raw.update(extra)
    path = tmp / "pod.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_heartbeat_dry_run_prints_payload(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLI_CAM_PW", "pw-from-env")
    assert main(["heartbeat", "--config", str(write(tmp_path)), "--dry-run"]) == 0
    out = capsys.readouterr().out
    payload = json.loads(out)
    assert payload["pod_id"] == "main-gate-pod" and payload["ip_address"] == "10.0.0.9"
    assert payload["cameras"][0]["rtsp_url"] == "rtsp://10.0.0.5/stream"
    assert "pw-from-env" not in out and "pbk_clisecret" not in out


def test_heartbeat_send_fails_cleanly_when_portal_down(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLI_CAM_PW", "pw")
    assert main(["heartbeat", "--config", str(write(tmp_path))]) == 1
    assert "portal unreachable" in capsys.readouterr().out


def test_config_error_exits_2_naming_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLI_CAM_PW", "pw")
    path = write(tmp_path, colour="blue")
    assert main(["run", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "colour: unknown key" in err
    assert "pbk_clisecret" not in err
    assert main(["check", "--config", str(path)]) == 2
    assert capsys.readouterr().out.startswith("FAIL config:")


def test_missing_env_var_names_key_and_variable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CLI_CAM_PW", raising=False)
    assert main(["heartbeat", "--config", str(write(tmp_path)), "--dry-run"]) == 2
    assert "camera_rtsp_url: environment variable CLI_CAM_PW is not set" in capsys.readouterr().err


def test_run_fails_cleanly_when_port_taken(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    monkeypatch.setenv("CLI_CAM_PW", "pw")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        path = write(tmp_path, listen_host="127.0.0.1", listen_port=port, hls_dir=str(tmp_path))
        assert main(["run", "--config", str(path)]) == 1
    assert f"cannot listen on 127.0.0.1:{port}" in caplog.text
