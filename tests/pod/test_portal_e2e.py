"""Against the real portal: the agent starts while the portal is down; when the portal comes
up, the next heartbeat registers the POD and its cameras with no manual step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.builders import pod_config, stream_token
from tests.support.camera import TestCamera
from tests.support.portal import login, migrate, new_sqlite_url, portal_process, seed_company
from tests.support.procs import free_port, wait_until

pytestmark = pytest.mark.e2e


def test_portal_returns_and_next_heartbeat_registers_pod(
    rtsp_camera: TestCamera, tmp_path: Path, agent_factory: Any
) -> None:
    db_url = new_sqlite_url(tmp_path)
    migrate(db_url)
    seeded = seed_company(db_url, pod_id="main-gate-pod")
    port = free_port()
    config = pod_config(
        tmp_path, rtsp_camera.url, tenant=seeded, portal_url=f"http://127.0.0.1:{port}"
    )
    agent = agent_factory(config)
    agent.wait_status("active")
    wait_until(
        lambda: agent.proc.output().count("portal unreachable") >= 2, what="failed heartbeats"
    )
    tok = stream_token(secret=seeded.stream_token_secret)
    # serving without a portal: "active" is the live output; the HLS playlist follows within
    # a segment (503 not_ready until then, which the HLS player retries)
    wait_until(lambda: agent.get("/stream", token=tok).status_code == 200, timeout=20, what="HLS")

    portal_dir = tmp_path / "portal"
    portal_dir.mkdir()
    with portal_process(db_url, port=port, log_dir=portal_dir) as portal:
        base = portal.url
        user = login(base, seeded.email, seeded.password)

        def registered() -> list[dict[str, Any]]:
            cams: list[dict[str, Any]] = httpx.get(
                f"{base}/api/cameras", headers=user, timeout=5
            ).json()["cameras"]
            return [c for c in cams if c["id"] == "gate-camera-1" and c["status"] == "active"]

        cams = wait_until(registered, timeout=20, what="camera registered in the portal")
        assert cams[0]["name"] == "Main Gate Camera"
        pods = httpx.get(f"{base}/api/pods", headers=user, timeout=5).json()["pods"]
        assert [(p["pod_id"], p["status"], p["ip_address"]) for p in pods] == [
            ("main-gate-pod", "online", "127.0.0.1")
        ]
    assert "heartbeat: portal reachable again" in agent.proc.output()
    assert seeded.api_key not in agent.proc.output()
