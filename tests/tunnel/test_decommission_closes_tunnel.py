"""A decommission from any process closes the POD's tunnel on the portal process holding it.

The CLI (``platebridge-portal pod decommission``) is another process than the portal that
holds the tunnel: it only revokes the keys in the database. The hub re-checks the keys of the
tunnels it holds every ``PLATEBRIDGE_TUNNEL_REGISTRY_TTL / 3`` seconds (here 1 s) and closes
those no longer valid (1008); the POD's redials are refused (403, revoked key). Real portal
process, real POD agent with its tunnel up, real CLI; SQLite and PostgreSQL.

Fast lane too: ``TunnelHub.recheck_keys`` with stand-in connections (a failed check closes
nothing; a tunnel without a recorded key is left alone).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from platebridge.portal.tunnel.hub import CLOSE_REVOKED, TunnelHub
from platebridge.portal.tunnel.registry import MemoryRegistry
from tests.support.camera import camera_available
from tests.support.portal import cli_json, login
from tests.support.procs import wait_until
from tests.tunnel.support import portal_stats, tunnel_world, wait_tunnel


@pytest.mark.e2e
@pytest.mark.skipif(not camera_available(), reason="needs ffmpeg and the GStreamer camera")
def test_cli_decommission_closes_the_tunnel_of_a_running_portal(
    tmp_path: Path, db_url: str
) -> None:
    env = {
        "PLATEBRIDGE_REDIS_URL": "",
        "PLATEBRIDGE_TUNNEL_REGISTRY_TTL": "3",  # keys re-checked every second
    }
    with tunnel_world(tmp_path, db_url, env) as w:
        base, tenant = w.base, w.tenant
        auth = login(base, tenant.email, tenant.password)
        wait_tunnel(base, auth, tenant.pod_id, timeout=40)
        assert portal_stats(base)["tunnels"] == 1
        pod_uuid = httpx.get(
            f"{base}/api/pods/{tenant.pod_id}/lifecycle", headers=auth, timeout=5
        ).json()["pod_uuid"]

        out = cli_json(db_url, "pod", "decommission", "--pod-id", pod_uuid)
        assert out["decommissioned"] is True and out["active_keys"] == 0
        assert "within" in out["note"]
        # closed by the 1 s re-check (bounded, not timed: the CLI's start under load varies)
        wait_until(
            lambda: portal_stats(base)["tunnels"] == 0,
            timeout=15,
            what="the running portal closed the decommissioned pod's tunnel",
        )
        # the POD redials (back-off ≤ 2 s) and is refused: no tunnel comes back
        time.sleep(4)
        assert portal_stats(base)["tunnels"] == 0
        state = httpx.get(w.pod_health, timeout=5).json()["tunnel"]["state"]
        assert state != "connected", state
    assert "closed: its key was revoked" in (tmp_path / "portal.log").read_text()


@dataclass
class StubConn:
    pod_id: str
    pod_key: uuid.UUID = field(default_factory=uuid.uuid4)
    closed_with: tuple[int, str] | None = None

    def close(self, code: int, reason: str) -> None:
        self.closed_with = (code, reason)


def _hub(check: Any) -> tuple[TunnelHub, list[StubConn]]:
    hub = TunnelHub(registry=MemoryRegistry(), key_check=check)
    conns = [StubConn("revoked"), StubConn("valid"), StubConn("unknown-key")]
    for conn, key in zip(conns, (b"k-revoked", b"k-valid", None), strict=True):
        hub.local[conn.pod_key] = conn  # type: ignore[assignment]
        if key is not None:
            hub.keys[conn.pod_key] = key
    return hub, conns


def test_recheck_closes_only_tunnels_whose_key_is_no_longer_valid() -> None:
    asked: list[list[bytes]] = []

    async def check(hashes: list[bytes]) -> set[bytes]:
        asked.append(hashes)
        return {b"k-valid"}

    hub, (revoked, valid, unknown) = _hub(check)
    assert asyncio.run(hub.recheck_keys()) == 1
    assert asked == [[b"k-revoked", b"k-valid"]]
    assert revoked.closed_with is not None and revoked.closed_with[0] == CLOSE_REVOKED
    assert valid.closed_with is None and unknown.closed_with is None


def test_a_failed_recheck_closes_nothing() -> None:
    async def check(hashes: list[bytes]) -> set[bytes]:
        raise OSError("database down")

    hub, conns = _hub(check)
    assert asyncio.run(hub.recheck_keys()) == 0
    assert all(c.closed_with is None for c in conns)
