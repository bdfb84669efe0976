"""bench/live_fanout.py end to end for a few seconds at 640x360 (so the bench cannot rot): real
portal, POD agent and camera, WebSocket viewers of the real route, the counting forwarders at
the POD's boundary. Sanity only (no timing goals: those are the benchmark's report)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from bench import live_fanout
from tests.support.camera import camera_available

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not camera_available(), reason="needs GStreamer's RTSP server, ffmpeg"),
]


def test_live_fanout_smoke(tmp_path: Path) -> None:
    r = live_fanout.main(["--smoke", "--out", str(tmp_path)])
    assert json.loads((tmp_path / "live_fanout.json").read_text())["benchmark"] == "live_fanout"
    assert r["fanout_table"].startswith("|") and r["start_table"].startswith("|") and r["targets"]
    assert [(x["method"], x["viewers"]) for x in r["fanout"]] == [
        ("proxy", 1),
        ("proxy", 3),
        ("tunnel", 1),
        ("tunnel", 3),
    ]
    for row in r["fanout"]:
        assert not row["viewer_errors"], row
        # Every viewer got the camera's stream, and the POD sent it once for all of them
        # (the forwarders count what crossed; bounds loose: heartbeats cross them too).
        assert row["viewer_received_Bps_median"] > 10_000, row
        assert 0.5 < row["pod_sent_Bps"] / row["viewer_received_Bps_median"] < 1.5, row
        assert row["portal_cpu_percent"] >= 0
    assert [(x["method"], x["join"]) for x in r["start"]] == [
        (m, j) for m in ("direct", "proxy", "tunnel") for j in ("cold", "warm")
    ]
    for s in r["start"]:
        assert "error" not in s, s
        assert 0 < s["init_text_ms"] <= s["first_fragment_ms"] <= s["cache_done_ms"], s
        # The keyframe cache is at most one GOP (2 s here) of media.
        assert 0 <= s["cache_media_s"] <= 2.5 and not math.isnan(s["cache_media_s"]), s
