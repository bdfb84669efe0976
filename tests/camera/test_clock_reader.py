"""bench/clock_reader.js (in Chromium) reads what tools/clock_code.py draws, both from a
picture painted in Python and from a frame of the real camera (x264 → RTSP → ffmpeg → PNG)."""

from __future__ import annotations

import base64
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright

from tests.camera._probe import clock_code
from tests.support.camera import PROFILES, TestCamera, camera_available
from tests.support.procs import REPO

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="needs /usr/bin/chromium"),
]

READER = REPO / "bench" / "clock_reader.js"
cc = clock_code()

GRAY_TO_CANVAS = """
([b64, w, h]) => {
  const gray = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const c = document.createElement('canvas');
  c.width = w; c.height = h;
  const ctx = c.getContext('2d');
  const img = ctx.createImageData(w, h);
  for (let i = 0; i < w * h; i++) {
    img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = gray[i];
    img.data[4 * i + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
  return window.PlateBridgeClock.read(c);
}
"""

PNG_TO_IMG = """
async (b64) => {
  const img = new Image();
  img.src = 'data:image/png;base64,' + b64;
  await img.decode();
  return window.PlateBridgeClock.read(img);
}
"""


@pytest.fixture(scope="module")
def page() -> Iterator[Page]:
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=["--no-sandbox"]
        )
        try:
            p = browser.new_page()
            p.add_init_script(path=str(READER))
            p.goto("about:blank")
            yield p
        finally:
            browser.close()


@pytest.mark.parametrize("size", [(320, 240), (640, 360), (1920, 1080)])
def test_reads_what_python_paints(page: Page, size: tuple[int, int]) -> None:
    w, h = size
    for ms in (0, cc.MODULUS - 1, int(time.time() * 1000)):
        img = cc.paint_gray(w, h, ms)
        r = page.evaluate(GRAY_TO_CANVAS, [base64.b64encode(bytes(img)).decode(), w, h])
        assert r["stamp"] == ms % cc.MODULUS, (size, ms, r)


@pytest.mark.parametrize("grey", [0, 127, 128, 255])
def test_rejects_a_picture_without_the_clock(page: Page, grey: int) -> None:
    blank = bytes([grey]) * (640 * 360)
    r = page.evaluate(GRAY_TO_CANVAS, [base64.b64encode(blank).decode(), 640, 360])
    assert r["stamp"] is None


@pytest.mark.skipif(not camera_available(), reason="needs GStreamer's RTSP server")
def test_reads_a_real_camera_frame(page: Page, tmp_path: Path) -> None:
    png = tmp_path / "frame.png"
    with TestCamera(tmp_path, profile=PROFILES["clock"]) as cam:
        before = int(time.time() * 1000)
        grab = ["ffmpeg", "-v", "error", "-rtsp_transport", "tcp", "-i", cam.url]
        subprocess.run(
            [*grab, "-frames:v", "1", "-y", str(png)],
            check=True,
            timeout=30,
        )
        after = int(time.time() * 1000)
    r = page.evaluate(PNG_TO_IMG, base64.b64encode(png.read_bytes()).decode())
    assert r["stamp"] is not None, r
    # The frame was captured while ffmpeg ran (a camera joined mid-GOP starts at the keyframe
    # after, so no earlier than `before`), and never after ffmpeg had it.
    assert before % cc.MODULUS <= r["stamp"] <= after % cc.MODULUS, (before, r, after)
