"""A real camera, real ffmpeg and the agent process: HLS plays with a token, rejections hold."""

from __future__ import annotations

import re
import signal
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.agent import Agent, pod_cli
from tests.support.builders import SECRET, pod_config, stream_token
from tests.support.camera import TestCamera
from tests.support.procs import pids_with, wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def agent(rtsp_camera: TestCamera, tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp = tmp_path_factory.mktemp("agent")
    config = pod_config(
        tmp,
        rtsp_camera.url,
        cameras=[{"camera_id": "side-gate", "name": "Side Gate", "rtsp_url": rtsp_camera.url}],
    )
    agent = Agent(tmp, config)
    try:
        agent.wait_status("active")
        agent.wait_status("active", "side-gate")
        yield agent
    finally:
        agent.close()


def assert_mpegts(data: bytes) -> None:
    assert len(data) >= 188 and len(data) % 188 == 0
    assert all(data[i] == 0x47 for i in range(0, len(data), 188))


def test_segments_appear_on_disk(agent: Agent) -> None:
    cam_dir = Path(agent.hls_dir) / "gate-camera-1"
    segments = wait_until(lambda: list(cam_dir.glob("seg_*.ts")), what="segments")
    assert all(re.fullmatch(r"seg_\d+\.ts", p.name) for p in segments)
    assert (cam_dir / "index.m3u8").is_file()


def test_playlist_and_segments_play_with_token(agent: Agent) -> None:
    tok = stream_token()
    r = agent.get("/stream", token=tok)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/vnd.apple.mpegurl")
    assert "no-cache" in r.headers["cache-control"]
    uris = [ln for ln in r.text.splitlines() if ln and not ln.startswith("#")]
    assert uris and r.text.startswith("#EXTM3U")
    for uri in uris:
        assert re.fullmatch(rf"stream/gate-camera-1/seg_\d+\.ts\?token={re.escape(tok)}", uri)
    seg = httpx.get(str(httpx.URL(agent.base + "/stream").join(uris[-1])), timeout=10)
    assert seg.status_code == 200
    assert seg.headers["content-type"] == "video/mp2t"
    assert_mpegts(seg.content)


def test_standard_hls_client_decodes_frames(agent: Agent) -> None:
    url = f"{agent.base}/stream?token={stream_token()}"
    out = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", url, "-frames:v", "20", "-f", "framemd5", "-"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr.decode()[-500:]
    frames = [ln for ln in out.stdout.decode().splitlines() if ln and not ln.startswith("#")]
    assert len(frames) == 20


def test_second_camera_served_under_its_own_token(agent: Agent) -> None:
    r = agent.get("/stream", token=stream_token("side-gate"))
    assert r.status_code == 200
    assert "stream/side-gate/seg_" in r.text
    # a side-gate token cannot fetch gate-camera-1 segments
    name = re.search(r"seg_\d+\.ts", agent.get("/stream", token=stream_token()).text)
    assert name
    r = agent.get(f"/stream/gate-camera-1/{name.group(0)}", token=stream_token("side-gate"))
    assert (r.status_code, r.json()["error"]) == (403, "wrong_camera")


@pytest.mark.parametrize(
    ("tok", "status", "error"),
    [
        (None, 401, "token_missing"),
        ("not-a-token", 401, "token_malformed"),
        ("a.b.c", 401, "token_malformed"),
        (stream_token(secret="another-secret-0123456789"), 401, "token_bad_signature"),
        (stream_token(exp_in=-5), 401, "token_expired"),
        (stream_token(pod_id="other-pod"), 403, "wrong_pod"),
        (stream_token("no-such-camera"), 404, "unknown_camera"),
    ],
)
def test_stream_rejections(agent: Agent, tok: str | None, status: int, error: str) -> None:
    params = {} if tok is None else {"token": tok}
    for path in ("/stream", "/snapshot"):
        r = agent.get(path, **params)
        assert r.status_code == status
        body = r.json()
        assert body["error"] == error and body["detail"]
        assert SECRET not in r.text


@pytest.mark.parametrize(
    "path",
    [
        "/stream/gate-camera-1/..%2F..%2Fpod.yaml",
        "/stream/gate-camera-1/%2e%2e%2fpod.yaml",
        "/stream/gate-camera-1/index.m3u8",
        "/stream/gate-camera-1/seg_1.ts.tmp",
        "/stream/../pod.yaml",
        "/stream/gate-camera-1/../../pod.yaml",
        "/stream/gate-camera-1/seg_999999.ts",
    ],
)
def test_traversal_and_unknown_segments_are_404(agent: Agent, path: str) -> None:
    r = httpx.get(agent.base + path, params={"token": stream_token()}, timeout=5)
    assert r.status_code == 404
    assert r.json()["error"] in {"not_found", "unknown_camera"}
    assert "pod_id" not in r.text


def test_segment_needs_token(agent: Agent) -> None:
    name = re.search(r"seg_\d+\.ts", agent.get("/stream", token=stream_token()).text)
    assert name
    r = agent.get(f"/stream/gate-camera-1/{name.group(0)}")
    assert (r.status_code, r.json()["error"]) == (401, "token_missing")
    r = agent.get(f"/stream/gate-camera-1/{name.group(0)}", token=stream_token(pod_id="x"))
    assert r.status_code == 403


def test_snapshot_is_jpeg(agent: Agent) -> None:
    r = agent.get("/snapshot", token=stream_token())
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/jpeg"
    assert r.content[:2] == b"\xff\xd8" and r.content[-2:] == b"\xff\xd9"


def test_health_has_no_secrets(agent: Agent, rtsp_camera: TestCamera) -> None:
    health = agent.health()
    assert health["pod_id"] == "main-gate-pod" and health["version"]
    assert {c["camera_id"]: c["status"] for c in health["cameras"]} == {
        "gate-camera-1": "active",
        "side-gate": "active",
    }
    text = agent.get("/health").text
    assert "rtsp://" not in text and SECRET not in text and "pbk_" not in text


def test_check_command_reports_each_item(agent: Agent) -> None:
    out = pod_cli("check", "--config", str(agent.config_path))
    lines = out.stdout.splitlines()
    assert out.returncode == 1  # the portal is down in this module
    assert lines[0].startswith("OK   config:")
    assert lines[1].startswith("OK   ffmpeg:")
    assert any(ln.startswith("OK   camera gate-camera-1: reachable, h264") for ln in lines)
    assert lines[-1].startswith("FAIL portal: portal unreachable")


def test_sigterm_leaves_no_ffmpeg(agent: Agent) -> None:
    """Last in the module: stop the shared agent and look for its children in /proc."""
    assert pids_with(agent.hls_dir), "ffmpeg should be running before the stop"
    agent.proc.signal(signal.SIGTERM)
    assert agent.proc.popen.wait(20) == 0
    assert pids_with(agent.hls_dir) == []
    assert not list(Path(agent.hls_dir).glob("*/seg_*.ts"))
