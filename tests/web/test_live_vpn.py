"""Method 3 (VPN) on the live view: the POD advertises a Tailscale address (100.64.0.0/10) and
the portal relays the live WebSocket to it, in Chromium.

No Tailscale daemon can run here, so the tailnet is faked at the same boundary the portal sees:
the POD agent and its camera run in a network namespace joined to the host by a veth pair whose
two ends carry CGNAT addresses (a random /30 in 100.100.0.0/16). The POD advertises its end, the
portal listens on the host's end and allows only ``100.64.0.0/10`` (not loopback), so the only
way to the POD is its VPN address, exactly what a portal on a tailnet does. ``auto`` with such an
address that answers uses it too (the proxy, no tunnel needed). (``auto`` → tunnel when the
address cannot be reached: test_tunnel_zero_config.py.)
"""

from __future__ import annotations

import contextlib
import os
import random
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page

from tests.support.camera import camera_available
from tests.support.portal import login
from tests.tunnel.support import NsCamera, netns_problem
from tests.web.conftest import CHROMIUM, assert_plays, sign_in
from tests.web.worlds import CAMERA_PATH, CameraWorld, camera_world, connections_to, state

VPN_NETWORKS = "100.64.0.0/10"


@dataclass
class VpnLink:
    name: str
    host_ip: str
    pod_ip: str
    prefix: list[str]


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@contextlib.contextmanager
def vpn_link() -> Iterator[VpnLink]:
    """A namespace behind a veth pair with Tailscale-range (CGNAT) addresses at both ends."""
    tag = f"{random.randrange(16**6):06x}"
    name, host_if, pod_if = f"pbv{tag}", f"pbvh{tag}", f"pbvp{tag}"
    a, b = random.randrange(0, 256), random.randrange(0, 64) * 4
    host_ip, pod_ip = f"100.100.{a}.{b + 1}", f"100.100.{a}.{b + 2}"
    ns = ["ip", "netns", "exec", name]
    try:
        _ip("netns", "add", name)
        _ip("link", "add", host_if, "type", "veth", "peer", "name", pod_if)
        _ip("link", "set", pod_if, "netns", name)
        _ip("addr", "add", f"{host_ip}/30", "dev", host_if)
        _ip("link", "set", host_if, "up")
        for cmd in (
            ["ip", "addr", "add", f"{pod_ip}/30", "dev", pod_if],
            ["ip", "link", "set", pod_if, "up"],
            ["ip", "link", "set", "lo", "up"],
        ):
            subprocess.run([*ns, *cmd], check=True, capture_output=True, timeout=10)
        yield VpnLink(name, host_ip, pod_ip, ns)
    finally:
        subprocess.run(["ip", "link", "del", host_if], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


@pytest.fixture(scope="module")
def vpn_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CameraWorld, VpnLink]]:
    if not camera_available() or not Path(CHROMIUM).exists():
        pytest.skip("needs GStreamer's RTSP server, ffmpeg and /usr/bin/chromium")
    problem = netns_problem()
    if problem is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"network namespaces unavailable ({problem}): CI must run this test")
        pytest.skip(f"network namespaces unavailable ({problem})")
    tmp = tmp_path_factory.mktemp("vpn")
    env = {"PLATEBRIDGE_POD_NETWORKS": VPN_NETWORKS, "PLATEBRIDGE_STREAM_CONNECT_TIMEOUT": "2"}
    with vpn_link() as link:
        camera = NsCamera(tmp, link.prefix)  # on the POD's own loopback, inside the namespace
        with camera_world(
            tmp,
            camera,
            env,
            host=link.host_ip,
            agent_prefix=link.prefix,
            agent_host=link.pod_ip,
            listen_host="0.0.0.0",
            advertise_address=link.pod_ip,
        ) as world:
            yield world, link


def _stream_started(world: CameraWorld, email: str, since: str) -> list[str]:
    auth = world.portal.login(world.tenant.email, world.tenant.password)
    r = httpx.get(
        f"{world.url}/api/audit",
        headers=auth,
        params={"pod_id": world.tenant.pod_id, "user": email, "since": since},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    return [e["method"] for e in r.json()["events"] if e["action"] == "stream_started"]


@pytest.mark.parametrize("mode", ["proxy", "auto"])
def test_live_view_through_the_pods_vpn_address(
    vpn_world: tuple[CameraWorld, VpnLink], page: Page, mode: str
) -> None:
    world, link = vpn_world
    world.set_mode(mode)
    auth = login(world.url, world.tenant.email, world.tenant.password)
    pod = httpx.get(f"{world.url}/api/pods/{world.tenant.pod_id}", headers=auth, timeout=10).json()
    assert pod["network"] == "vpn" and pod["ip_address"] == link.pod_ip, pod
    assert pod["stream_mode"] == mode and pod["unavailable_reason"] is None, pod
    email, password = world.viewer()
    since = datetime.now(UTC).isoformat()
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    sign_in(page, world.url, email, password, CAMERA_PATH)
    assert_plays(page, seconds=2.0)
    st = state(page)
    assert st["player"] == "mse" and st["state"] == "playing", st
    own = world.url.replace("http://", "ws://")
    assert len(sockets) == 1 and sockets[0].startswith(f"{own}/api/pod/live/"), sockets
    # The portal's upstream is a TCP connection to the POD's VPN address (nothing else is
    # allowed or advertised), and the audit trail calls the viewing a proxied one.
    port = int(world.agent_config["listen_port"])
    assert connections_to(port, world.portal.pid) >= 1
    assert _stream_started(world, email, since) == ["proxy"]
