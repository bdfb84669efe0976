"""The demo as a new user runs it: start, wait for the printed URL and login, watch a camera in
Chromium, Ctrl-C, and find no process left behind. A second run reuses the data directory."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import sync_playwright

from tests.support.camera import camera_available
from tests.support.procs import REPO, free_port, wait_until
from tests.web.conftest import CHROMIUM, CHROMIUM_ARGS, assert_plays, screenshot_dir

pytestmark = pytest.mark.e2e


def descendants(root: int) -> set[int]:
    """All live descendants of ``root`` (by parent pid, through /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(") ", 1)[1].split()
        if fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: set[int] = set()
    todo = [root]
    while todo:
        for pid in children.get(todo.pop(), []):
            if pid not in found:
                found.add(pid)
                todo.append(pid)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0]
    except OSError:
        return False
    return state != "Z"


def start_demo(data_dir: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], list[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "platebridge.demo"],
        cwd=REPO,
        env={**os.environ, **env, "DEMO_DIR": str(data_dir)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    return proc, []


def read_until_banner(proc: subprocess.Popen[str], lines: list[str], timeout: float) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "Press Ctrl-C" in line:
            return "".join(lines)
    raise AssertionError("demo did not print its banner:\n" + "".join(lines))


def cleanup(proc: subprocess.Popen[str]) -> None:
    """After a failure: let the demo stop its children (SIGINT), then kill whatever is left."""
    if proc.poll() is not None:
        return
    family = descendants(proc.pid)
    proc.send_signal(signal.SIGINT)
    try:
        proc.communicate(timeout=40)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    for pid in family | descendants(proc.pid):
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def stop_and_check(proc: subprocess.Popen[str], lines: list[str]) -> None:
    family = descendants(proc.pid)
    assert len(family) >= 4, f"expected cameras, portal, POD agent (+ffmpeg): {family}"
    proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
    try:
        out, _ = proc.communicate(timeout=40)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    lines.append(out)
    assert proc.returncode == 0, "".join(lines)
    assert "demo: stopped." in out
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(alive(p) for p in family):
        time.sleep(0.1)
    left = [p for p in family if alive(p)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert left == [], f"processes left behind: {left}"


def check_footage(portal: str, email: str, password: str, data_dir: Path) -> None:
    """The demo's POD records: within ~15 s of the banner the portal's footage API lists a
    recorded span of a camera, and ``/media`` from its start is an fMP4 body."""
    login = httpx.post(f"{portal}api/auth/login", json={"email": email, "password": password})
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    pod, camera = "main-gate-pod", "gate-camera-1"

    def recorded() -> list[dict[str, object]]:
        now = time.time()
        query = {"camera_id": camera, "from": f"{now - 3600:.3f}", "to": f"{now + 60:.3f}"}
        r = httpx.get(f"{portal}api/footage/{pod}", params=query, headers=headers, timeout=10)
        assert r.status_code == 200, r.text
        return [s for s in r.json()["spans"] if s["kind"] == "recording"]

    spans = wait_until(recorded, timeout=30, interval=1, what="a recorded span in the footage API")
    query = {"camera_id": camera, "start": str(spans[0]["start"]), "duration": "2"}
    r = httpx.get(f"{portal}api/footage/{pod}/media", params=query, headers=headers, timeout=20)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "video/mp4"
    assert r.content[4:8] == b"ftyp" and b"moof" in r.content
    assert float(r.headers["X-PlateBridge-Media-Start"]) >= float(str(spans[0]["start"])) - 1
    # Recorded inside the demo's directory, by camera and UTC day.
    assert list((data_dir / "recordings" / camera).glob("*/*.mp4"))


@pytest.mark.skipif(not camera_available(), reason="needs GStreamer's RTSP server and ffmpeg")
def test_demo_runs_plays_and_stops_cleanly(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo-data"
    env = {
        "PORTAL_PORT": str(free_port()),
        "POD_PORT": str(free_port()),
        "CAMERA_PORTS": f"{free_port()},{free_port()}",
    }
    proc, lines = start_demo(data_dir, env)
    try:
        banner = read_until_banner(proc, lines, timeout=150)
        url = re.search(r"Open:\s+(\S+)", banner)
        email = re.search(r"E-mail:\s+(\S+)", banner)
        password = re.search(r"Password:\s+(\S+)", banner)
        assert url and email and password, banner
        assert url.group(1) == f"http://127.0.0.1:{env['PORTAL_PORT']}/"
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.goto(url.group(1))
                page.fill("#email", email.group(1))
                page.fill("#password", password.group(1))
                page.click("button[type=submit]")
                page.wait_for_url("**/cameras")
                cards = page.locator(".camera-card[data-state=live]")
                assert cards.count() == 2
                shots = screenshot_dir()
                if shots:  # README screenshots, from the real demo with video playing
                    loaded = "() => [...document.images].every(i => i.complete && i.naturalWidth)"
                    wait_until(lambda: page.evaluate(loaded), what="thumbnails")
                    page.screenshot(path=str(shots / "cameras.png"))
                    page.goto(url.group(1) + "cameras/main-gate-pod/gate-camera-1")
                    assert_plays(page, seconds=1)
                    page.screenshot(path=str(shots / "live-view.png"))
                page.goto(url.group(1) + "alerts")  # the alert history (issue 14)
                assert page.locator("h1").inner_text() == "Alerts"
                page.goto(url.group(1) + "cameras/grid")
                assert_plays(page, ".grid li:nth-child(1) video", seconds=2)
                assert_plays(page, ".grid li:nth-child(2) video", seconds=2)
            finally:
                browser.close()
        assert "Footage:" in banner and "→ Footage" in banner
        assert f"Alerts:    {url.group(1)}alerts" in banner
        check_footage(url.group(1), email.group(1), password.group(1), data_dir)
        stop_and_check(proc, lines)
    finally:
        cleanup(proc)

    # Second run: the same data directory (database, config) is reused.
    assert (data_dir / "portal.db").exists() and (data_dir / "pod.yaml").exists()
    assert oct((data_dir / "pod.yaml").stat().st_mode & 0o777) == "0o600"
    proc, lines = start_demo(data_dir, env)
    try:
        read_until_banner(proc, lines, timeout=150)
        stop_and_check(proc, lines)
    finally:
        cleanup(proc)
