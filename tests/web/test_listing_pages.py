"""Long lists in Chromium: the cameras page loads the next pages as the user scrolls (filters
kept), and the grid plays only the tiles in view (``static/cameras.js``, ``static/grid.js``).

World: a real portal process (SQLite) and 150 fake cameras (3 pods x 50, registered by
heartbeat; no video: a tile that starts tries its live socket, which is what is counted). The
pods' address is a loopback port nothing listens on, so the portal refuses fast.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, WebSocket

from tests.support.portal import (
    SeededCompany,
    in_session,
    migrate,
    new_sqlite_url,
    portal_process,
    seed_company,
)
from tests.support.procs import free_port, wait_until
from tests.web.conftest import CHROMIUM, sign_in

PODS = ("main-gate-pod", "pod-2", "pod-3")
PER_POD = 50
ERRORS = 25  # pod-3's last 25 cameras report an error: 125 live, 150 in all


@dataclass
class ListWorld:
    url: str
    a: SeededCompany


def _doc(pod_id: str, port: int) -> dict[str, Any]:
    cams: list[dict[str, Any]] = []
    for i in range(PER_POD):
        cam: dict[str, Any] = {
            "camera_id": f"cam-{i:03d}",
            "name": f"Camera {pod_id} {i:03d}",
            "rtsp_url": f"rtsp://127.0.0.1:{port}/s{i}",
        }
        if pod_id == "pod-3" and i >= PER_POD - ERRORS:
            cam.update(status="error", error="stalled")
        cams.append(cam)
    return {
        "pod_id": pod_id,
        "ip_address": "127.0.0.1",
        "stream_port": port,
        "status": "online",
        "cameras": cams,
    }


@pytest.fixture(scope="module")
def lw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ListWorld]:
    from platebridge.portal.services import admin

    if not Path(CHROMIUM).exists():
        pytest.skip("needs Chromium")
    tmp = tmp_path_factory.mktemp("listing")
    db_url = new_sqlite_url(tmp)
    migrate(db_url)
    a = seed_company(db_url)
    keys = {a.pod_id: a.api_key}

    async def more_pods(s: Any) -> None:
        for pod_id in PODS[1:]:
            created = await admin.create_pod(s, a.site_id, pod_id, pod_id)
            created.pod.stream_mode = "proxy"
            keys[pod_id] = created.api_key

    asyncio.run(in_session(db_url, more_pods))
    dead_port = free_port()  # nothing listens there: the portal's upstream fails at once
    env = {"PLATEBRIDGE_POD_NETWORKS": "127.0.0.0/8"}
    with portal_process(db_url, env, log_dir=tmp) as portal:
        for pod_id, key in keys.items():
            r = httpx.post(
                f"{portal.url}/api/pod/heartbeat",
                headers={"Authorization": f"Bearer {key}"},
                json=_doc(pod_id, dead_port),
                timeout=30,
            )
            assert r.status_code == 200, r.text
        yield ListWorld(portal.url, a)


def _cards(page: Page) -> list[str]:
    return page.eval_on_selector_all(".camera-card", "els => els.map(e => e.dataset.camera)")


def test_scrolling_loads_the_next_page_with_the_filters(lw: ListWorld, page: Page) -> None:
    sign_in(page, lw.url, lw.a.email, lw.a.password, "/cameras?status=live")
    assert len(_cards(page)) == 100
    assert page.text_content("#camera-count") == f"{3 * PER_POD - ERRORS} cameras"
    more = page.get_attribute("#list-more", "data-more") or ""
    assert "status=live" in more and page.get_attribute("#list-more", "data-cursor")
    fetched: list[str] = []
    page.on("request", lambda req: fetched.append(req.url) if "/cameras/more" in req.url else None)
    for _ in range(20):  # scroll until the sentinel has loaded everything (bounded)
        page.mouse.wheel(0, 4000)
        page.wait_for_timeout(250)
        if page.is_hidden("#list-more"):
            break
    page.wait_for_function(f"document.querySelectorAll('.camera-card').length >= {125}")
    cards = _cards(page)
    assert len(cards) == 3 * PER_POD - ERRORS, "the filter was lost on the next page"
    assert len(set(cards)) == len(cards)
    assert cards == sorted(cards)  # one site: pod_id, camera_id
    assert len(fetched) == 1 and "status=live" in fetched[0]
    assert page.is_hidden("#list-more")


def test_search_box_keeps_q_and_no_sentinel_when_one_page(lw: ListWorld, page: Page) -> None:
    sign_in(page, lw.url, lw.a.email, lw.a.password, "/cameras")
    page.fill("#f-q", "CAMERA POD-2 01")
    page.click(".filters button[type=submit]")
    page.wait_for_url("**q=CAMERA+POD-2+01**")
    cards = _cards(page)
    assert cards == [f"pod-2/cam-{i:03d}" for i in range(10, 20)]
    assert page.is_hidden("#list-more")


def test_grid_starts_only_the_tiles_in_view(lw: ListWorld, page: Page) -> None:
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url) if _is_live(ws) else None)
    sign_in(page, lw.url, lw.a.email, lw.a.password, "/cameras/grid")
    assert page.eval_on_selector_all(".player[data-lazy]", "els => els.length") == 100
    page.wait_for_function("document.querySelectorAll('.player[data-attached]').length > 0")
    page.wait_for_timeout(1500)
    attached = _settled(page)
    assert 0 < len(attached) <= 30, attached
    started = set(sockets)
    assert len(started) > 0 and len(started) <= len(attached) * 3, started  # retries allowed
    first = set(attached)
    # Scroll to the bottom: the top tiles stop, the bottom ones start, the count stays small.
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    page.wait_for_selector("#list-more", state="hidden")  # the last 25 tiles came too
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    assert page.eval_on_selector_all(".player[data-lazy]", "els => els.length") == 125
    wait_until(
        lambda: not (set(_attached(page)) & first),
        timeout=10,
        what="the tiles scrolled away are detached",
    )
    now = _settled(page)
    assert 0 < len(now) <= 30
    states = page.eval_on_selector_all(
        ".player:not([data-attached])", "els => els.map(e => e.dataset.state || 'never')"
    )
    assert set(states) <= {"idle", "never"}, set(states)


def _settled(page: Page) -> list[str]:
    """The attached tiles once they are exactly the tiles in view (the observer's callbacks
    are asynchronous; a tile's status line can still move the layout)."""
    same = wait_until(
        lambda: (a := _attached(page)) and set(a) == set(page.evaluate(VISIBLE_JS)) and a,
        timeout=10,
        what="the tiles playing are the tiles in view",
    )
    result: list[str] = same
    return result


def _attached(page: Page) -> list[str]:
    result: list[str] = page.eval_on_selector_all(
        ".player[data-attached]", "els => els.map(e => e.dataset.pod + '/' + e.dataset.camera)"
    )
    return result


def _is_live(ws: WebSocket) -> bool:
    return "/api/pod/live/" in ws.url


VISIBLE_JS = """() => Array.from(document.querySelectorAll('.player[data-lazy]')).filter(e => {
  const r = e.getBoundingClientRect();
  return r.bottom > 0 && r.top < window.innerHeight && r.right > 0 && r.left < window.innerWidth;
}).map(e => e.dataset.pod + '/' + e.dataset.camera)"""
