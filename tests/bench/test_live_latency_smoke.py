"""bench/live_latency.py end to end for a few seconds at 640x360 (so the bench cannot rot): the
burned-in clock is read back from the playing page and gives sane glass-to-glass figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import live_latency
from tests.support.camera import camera_available

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not camera_available() or not Path(live_latency.CHROMIUM).exists(),
        reason="needs GStreamer's RTSP server, ffmpeg and /usr/bin/chromium",
    ),
]


def test_live_latency_smoke(tmp_path: Path) -> None:
    r = live_latency.main(["--smoke", "--players", "mse,hls", "--out", str(tmp_path)])
    assert json.loads((tmp_path / "live_latency.json").read_text())["benchmark"] == "live_latency"
    assert r["table"].startswith("|") and r["targets"]
    assert [(x["player"], x["method"], x["gop_s"]) for x in r["runs"]] == [
        ("mse", "proxy", 1.0),
        ("hls", "proxy", 1.0),
    ]
    for run in r["runs"]:
        # The page played with the player asked for (live.js's data-player), and read clocks.
        assert run["first_frame"] and run["player_ok"], run
        assert run["samples"] >= 5 and run["ttff_ms"] > 0
        # Same machine, same clock: a picture is shown after it was captured, not minutes later.
        assert 0 < run["min_ms"] <= run["median_ms"] <= run["p95_ms"] <= run["max_ms"] < 60_000
        assert run["camera_kbps"] > 0


def test_unknown_player_is_refused() -> None:
    with pytest.raises(SystemExit):
        live_latency.main(["--players", "flash"])
