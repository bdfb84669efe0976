"""Optional TLS: with tls_cert/tls_key the agent serves HTTPS (no camera needed for /health)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.builders import pod_config
from tests.support.procs import free_port

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl"),
]


def test_https_when_cert_and_key_configured(tmp_path: Path, agent_factory: Any) -> None:
    cert, key = tmp_path / "pod.crt", tmp_path / "pod.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    dead_camera = f"rtsp://127.0.0.1:{free_port()}/stream"
    config = pod_config(tmp_path, dead_camera, tls_cert=str(cert), tls_key=str(key))
    agent = agent_factory(config)  # waits for https /health, verifying the certificate
    assert agent.base.startswith("https://")
    assert agent.health()["pod_id"] == "main-gate-pod"
    camera = agent.wait_status("error", timeout=20)
    assert "Connection refused" in camera["error"]
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{config['listen_port']}/health", timeout=5)
