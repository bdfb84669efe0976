"""A tiny run of every benchmark (``--smoke``), so bench/ cannot rot. The figures are not
checked — only that each benchmark runs end to end, writes its JSON and reports its targets."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from bench import alerts, browser, heartbeat, listing, metrics, pod_footprint, proxy_relay, tokens
from bench.run_all import render_block
from tests.support.camera import camera_available

needs_wrk = pytest.mark.skipif(shutil.which("wrk") is None, reason="needs wrk (scripts/setup.sh)")
needs_camera = pytest.mark.skipif(
    not camera_available(), reason="needs GStreamer's RTSP server and ffmpeg"
)


def _check(result: dict[str, Any], out: Path, name: str) -> None:
    assert (out / f"{name}.json").exists()
    assert json.loads((out / f"{name}.json").read_text())["benchmark"] == name
    assert result["targets"], "every benchmark reports its targets"
    assert result["table"].startswith("|")
    assert result["machine"]["cores"] >= 1


def test_metrics_sqlite(tmp_path: Path) -> None:
    r = metrics.main(["--smoke", "--backend", "sqlite", "--out", str(tmp_path)])
    _check(r, tmp_path, "metrics")
    assert r["results"]["sqlite"]["exposition_lines"] > 0


def test_alerts_sqlite(tmp_path: Path) -> None:
    r = alerts.main(["--smoke", "--backend", "sqlite", "--out", str(tmp_path)])
    _check(r, tmp_path, "alerts")
    assert r["results"]["sqlite"]["incidents_written_at_onset"] > 0


def test_tokens(tmp_path: Path) -> None:
    r = tokens.main(["--smoke", "--out", str(tmp_path)])
    _check(r, tmp_path, "tokens")
    assert r["results"]["verify_stream_token"]["per_s"] > 0


@needs_wrk
def test_heartbeat_sqlite(tmp_path: Path) -> None:
    r = heartbeat.main(["--smoke", "--backend", "sqlite", "--out", str(tmp_path)])
    _check(r, tmp_path, "heartbeat")
    rows = r["results"]["sqlite"]["rows"]
    assert rows["unchanged/http"]["errors"] == 0 and rows["changed/http"]["errors"] == 0
    assert rows["unchanged/http"]["rps"] > 0 and rows["changed/raw"]["rps"] > 0


@needs_wrk
def test_listing_sqlite(tmp_path: Path) -> None:
    r = listing.main(["--smoke", "--backend", "sqlite", "--out", str(tmp_path)])
    _check(r, tmp_path, "listing")
    res = r["results"]["sqlite"]
    assert all(run["errors"] == 0 for run in res["runs"].values())
    assert res["search_narrow_hits"] > 0


@needs_wrk
@pytest.mark.skipif(
    shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists(),
    reason="needs nginx (scripts/setup.sh)",
)
def test_proxy_relay(tmp_path: Path) -> None:
    r = proxy_relay.main(["--smoke", "--backend", "sqlite", "--out", str(tmp_path)])
    _check(r, tmp_path, "proxy_relay")
    assert all(s["errors"] == 0 for s in r["segments"].values())


@pytest.mark.e2e
@needs_camera
def test_pod_footprint(tmp_path: Path) -> None:
    r = pod_footprint.main(["--smoke", "--out", str(tmp_path)])
    _check(r, tmp_path, "pod_footprint")
    assert r["results"]["agent"]["rss_peak_mb"] > 0


@pytest.mark.e2e
@needs_camera
@pytest.mark.skipif(not Path(browser.CHROMIUM).exists(), reason="needs /usr/bin/chromium")
def test_browser(tmp_path: Path) -> None:
    r = browser.main(["--smoke", "--out", str(tmp_path)])
    _check(r, tmp_path, "browser")
    assert r["results"]["proxy"]["ttff_ms_median"] > 0


def test_run_all_block() -> None:
    machine = {
        "date": "d",
        "cores": 2,
        "cpu_model": "cpu",
        "python": "3",
        "kernel": "k",
        "loadavg": [0.0],
        "busy_processes": [],
    }
    result = {"targets": [{"target": "t", "value": "v", "met": False}], "table": "| a |"}
    block = render_block(machine, {"tokens": result}, {"browser": "RuntimeError: x"})
    assert "**MISSED**" in block and "not measured" in block and "| a |" in block
