"""What the browser tests share: a real portal + POD agent + RTSP camera started in one call
(:func:`camera_world`), and the page-side probes of the player (:data:`STATE_JS`,
:func:`progress`, :class:`PageSession`).

``camera_world`` seeds one company per entry of ``companies`` (the first is the ``tenant``), starts
the portal on ``host`` and one agent for the first company's pod (``tunnel=True``: the POD's
tunnel is always up, so the portal's ``stream_mode`` alone picks proxy or tunnel). Everything it
started is stopped at the end, whatever happened.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
from playwright.sync_api import Page
from websockets.sync.client import connect

from tests.support import portal as support
from tests.support.agent import Agent
from tests.support.builders import pod_config as support_pod_config
from tests.support.camera import TestCamera
from tests.support.portal import PortalProc, SeededCompany, cli, new_sqlite_url, portal_process
from tests.support.procs import wait_until

POD_ID = "main-gate-pod"
CAMERA_ID = "gate-camera-1"
CAMERA_PATH = f"/cameras/{POD_ID}/{CAMERA_ID}"
T = TypeVar("T")

# Evaluated in the page: the player's view of itself, and the video's clock.
STATE_JS = """
(selector) => {
  const root = document.querySelector(selector || '.player');
  const v = root.querySelector('video');
  const label = root.querySelector('.player-label');
  const status = root.querySelector('.player-status');
  return {t: v.currentTime, state: root.dataset.state, player: root.dataset.player,
          delay: parseFloat(root.dataset.delay || 'NaN'), rate: v.playbackRate,
          muted: v.muted, paused: v.paused, audioBytes: v.webkitAudioDecodedByteCount || 0,
          status: status ? status.textContent : '', label: label.hidden ? '' : label.textContent};
}
"""

# Evaluated in the page: seconds since the video's currentTime last changed (or was 0).
PROGRESS_JS = """
() => {
  const v = document.querySelector('.player video');
  const now = performance.now();
  if (window.__pbLast === undefined || v.currentTime !== window.__pbLast) {
    window.__pbLast = v.currentTime; window.__pbAt = now;
  }
  return {t: v.currentTime, frozen: (now - window.__pbAt) / 1000,
          state: v.closest('.player').dataset.state};
}
"""

# Started once in the page: every 100 ms, the longest time currentTime stood still, every
# data-state and status text seen, and whether currentTime ever went backwards.
WATCH_JS = """
() => {
  const v = document.querySelector('.player video');
  const root = v.closest('.player');
  const w = window.__pbWatch = {maxFrozen: 0, states: {}, statuses: {}, backwards: 0,
                                samples: 0, last: v.currentTime, at: performance.now()};
  window.setInterval(() => {
    const now = performance.now();
    w.samples += 1;
    w.states[root.dataset.state] = (w.states[root.dataset.state] || 0) + 1;
    const text = root.querySelector('.player-status').textContent;
    if (text) { w.statuses[text] = (w.statuses[text] || 0) + 1; }
    if (v.currentTime < w.last) { w.backwards += 1; }
    if (v.currentTime !== w.last) { w.last = v.currentTime; w.at = now; }
    w.maxFrozen = Math.max(w.maxFrozen, (now - w.at) / 1000);
  }, 100);
}
"""


def off_loop(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a helper that uses ``asyncio.run`` in a worker thread: Playwright's sync API keeps
    an event loop running in the test thread."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn, *args, **kwargs).result(timeout=60)


def seed_company(db_url: str, name: str, **kwargs: Any) -> SeededCompany:
    return off_loop(support.seed_company, db_url, name, **kwargs)


def age_pods(db_url: str, company_id: str, seconds: float) -> None:
    off_loop(support.age_pods, db_url, company_id, seconds)


def pod_config(tmp: Path, seeded: SeededCompany, portal_url: str, rtsp_url: str) -> dict[str, Any]:
    """The support POD config for the browser: heartbeats every 2 s, CORS for the portal."""
    return support_pod_config(
        tmp,
        rtsp_url,
        tenant=seeded,
        portal_url=portal_url,
        heartbeat_interval=2,
        cors_origins=[portal_url],
    )


def wait_registered(url: str, seeded: SeededCompany, timeout: float = 30) -> None:
    """Until the portal lists the POD's camera as streamable (its heartbeat has arrived)."""
    auth = support.login(url, seeded.email, seeded.password)

    def live() -> bool:
        cams = httpx.get(f"{url}/api/cameras", headers=auth, timeout=5).json()["cameras"]
        return any(c["streamable"] for c in cams)

    wait_until(live, timeout=timeout, what="camera registered in the portal")


def state(page: Page, selector: str = ".player") -> dict[str, Any]:
    value: dict[str, Any] = page.evaluate(STATE_JS, selector)
    return value


def progress(page: Page) -> dict[str, Any]:
    value: dict[str, Any] = page.evaluate(PROGRESS_JS)
    return value


def wait_advancing(page: Page, *, timeout: float = 30, frozen: float = 0.3) -> None:
    """Until the player says ``playing`` and the video moves again (not frozen)."""
    before = progress(page)["t"]

    def advancing() -> bool:
        now = progress(page)
        return bool(now["state"] == "playing" and now["t"] != before and now["frozen"] < frozen)

    wait_until(advancing, timeout=timeout, interval=0.05, what="video advancing again")


class PageSession:
    """The signed-in page's session as an HTTP client (its cookies and CSRF token): stream
    tokens, and a look at the stream itself, as the page would see it."""

    def __init__(self, page: Page, base: str) -> None:
        cookies = {c["name"]: c["value"] for c in page.context.cookies()}
        self.csrf = page.get_attribute('meta[name="csrf-token"]', "content") or ""
        self.base = base
        self.client = httpx.Client(base_url=base, cookies=cookies, timeout=5)

    def __enter__(self) -> PageSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def token(self, pod_id: str = POD_ID, camera_id: str = CAMERA_ID) -> httpx.Response:
        return self.client.post(
            "/api/pod/stream-token",
            json={"pod_id": pod_id, "camera_id": camera_id},
            headers={"X-CSRF-Token": self.csrf},
        )

    def hls_serving(self) -> bool:
        """The proxy's playlist answers with segments."""
        t = self.token()
        if t.status_code != 200:
            return False
        r = self.client.get(t.json()["proxy_url"])
        return r.status_code == 200 and "#EXTINF" in r.text

    def live_serving(self) -> bool:
        """A viewer of our own: the portal's live socket sends an init and a fragment."""
        t = self.token()
        if t.status_code != 200 or not t.json().get("live_url"):
            return False
        url = self.base.replace("http://", "ws://") + t.json()["live_url"]
        try:
            with connect(url, open_timeout=3) as ws:
                first = json.loads(ws.recv(timeout=3))
                ws.recv(timeout=3)  # the init segment
                return bool(first["type"] == "init" and isinstance(ws.recv(timeout=3), bytes))
        except Exception:  # refused, closed with an error message, timed out: not serving
            return False


@dataclass
class CameraWorld:
    url: str
    db_url: str
    tmp: Path
    camera: TestCamera
    companies: list[SeededCompany]
    agent: Agent
    portal: PortalProc
    agent_config: dict[str, Any] = field(default_factory=dict)

    @property
    def tenant(self) -> SeededCompany:
        return self.companies[0]

    def set_mode(self, mode: str, pod_id: str | None = None) -> None:
        pod = pod_id or self.tenant.pod_id
        cli(self.db_url, "pod", "set-mode", "--pod-id", pod, "--mode", mode)

    def viewer(self, company: SeededCompany | None = None) -> tuple[str, str]:
        """A fresh viewer (the audit trail's viewing window is per user): (email, password)."""
        email = f"viewer-{uuid.uuid4().hex[:8]}@example.test"
        password = f"pw-{uuid.uuid4().hex[:12]}"
        company_id = (company or self.tenant).company_id
        cli(
            self.db_url,
            *("user", "create", "--company", company_id, "--email", email),
            *("--password", password, "--role", "viewer"),
        )
        return email, password


def tunnel_agent_config(tmp: Path, tenant: SeededCompany, portal_url: str, rtsp_url: str) -> Any:
    """The browser tests' POD config with the tunnel always up (fast reconnects and pings)."""
    return pod_config(tmp, tenant, portal_url, rtsp_url) | {
        "hls_dir": str(tmp / f"hls-{uuid.uuid4().hex[:6]}"),
        "tunnel": True,
        "tunnel_backoff_max": 2,
        "tunnel_ping_interval": 2,
    }


@contextlib.contextmanager
def camera_world(
    tmp: Path,
    camera: TestCamera,
    env: Mapping[str, str],
    *,
    companies: Sequence[tuple[str, str]] = (("Company A", POD_ID),),
    db_url: str | None = None,
    host: str = "127.0.0.1",
    tunnel: bool = False,
    active_timeout: float = 40,
    agent_prefix: Sequence[str] = (),
    agent_host: str | None = None,
    **pod_overrides: Any,
) -> Iterator[CameraWorld]:
    """Portal (``env``) + seeded ``companies`` ((name, pod id) each) + ``camera`` (started
    here) + an agent for the first company's pod; yields once its camera is ``active`` and
    the portal lists it as streamable. ``agent_prefix`` runs the agent through a command
    (``ip netns exec NAME``); its ``/health`` is then asked at ``agent_host``."""
    db_url = db_url or new_sqlite_url(tmp)
    off_loop(support.migrate, db_url)
    seeded = [seed_company(db_url, name, pod_id=pod) for name, pod in companies]
    with camera, portal_process(db_url, env, host=host, log_dir=tmp) as portal:
        agent_dir = tmp / f"agent-{uuid.uuid4().hex[:6]}"
        agent_dir.mkdir()
        make = tunnel_agent_config if tunnel else pod_config
        config = make(agent_dir, seeded[0], portal.url, camera.url) | pod_overrides
        agent = Agent(agent_dir, config, prefix=agent_prefix, wait=agent_host is None)
        try:
            if agent_host is not None:
                agent.base = f"http://{agent_host}:{config['listen_port']}"
                agent.wait_health()
            agent.wait_status("active", timeout=active_timeout)
            wait_registered(portal.url, seeded[0])
            yield CameraWorld(portal.url, db_url, tmp, camera, seeded, agent, portal, config)
        except BaseException:
            print(agent.output()[-3000:])
            raise
        finally:
            agent.close()


def _socket_inodes(pid: int) -> set[str]:
    inodes: set[str] = set()
    with contextlib.suppress(FileNotFoundError, PermissionError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    return inodes


def connections_to(port: int, pid: int) -> int:
    """Established TCP connections from process ``pid`` (the portal) to ``port`` (the POD's):
    the portal's proxy upstreams. (The POD's tunnel client talks to its own port too; those
    are not the portal's.)"""
    mine = _socket_inodes(pid)
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError), open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                remote_port = int(fields[2].rsplit(":", 1)[1], 16)
                if fields[3] == "01" and remote_port == port and fields[9] in mine:
                    count += 1
    return count
