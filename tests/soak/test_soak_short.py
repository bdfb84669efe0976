"""The short CI versions of the on-demand load and soak (``scripts/soak.sh`` runs the full ones).

Sizes come from the environment so the same tests can run longer:
``PB_SOAK_PODS`` (50), ``PB_SOAK_VIEWERS`` (3), ``PB_SOAK_SECONDS`` (10),
``PB_POD_SOAK_SECONDS`` (45), ``PB_POD_SOAK_RESTART`` (20).
"""

from __future__ import annotations

import os

import pytest

from tests.conftest import require_postgres
from tests.soak import load, pod_soak
from tests.support.camera import camera_available


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


@pytest.mark.postgres
def test_load_short_on_postgresql() -> None:
    require_postgres()
    args = load.parser().parse_args(
        [
            "--pods", _env("PB_SOAK_PODS", "50"),
            "--viewers", _env("PB_SOAK_VIEWERS", "3"),
            "--duration", _env("PB_SOAK_SECONDS", "10"),
            "--interval", "2",
            "--db", "postgres",
        ]
    )  # fmt: skip
    result = load.run(args)
    assert result.heartbeat["errors"] == 0, result.heartbeat
    assert result.viewer["errors"] == 0, result.viewer
    assert result.viewer["requests"] > 0
    assert result.segment["requests"] > 0 and result.segment["errors"] == 0, result.segment
    assert result.heartbeat["requests"] >= args.pods, result.heartbeat  # every POD sent
    assert result.registered_pods == args.pods
    assert result.stale_pods == 0
    assert result.rss_end_kib < result.rss_start_kib + 64 * 1024, result


@pytest.mark.e2e
@pytest.mark.skipif(not camera_available(), reason="needs ffmpeg and the GStreamer RTSP server")
def test_pod_soak_short() -> None:
    args = pod_soak.parser().parse_args(
        [
            "--cameras", "4",
            "--duration", _env("PB_POD_SOAK_SECONDS", "45"),
            "--restart-every", _env("PB_POD_SOAK_RESTART", "20"),
        ]
    )  # fmt: skip
    result = pod_soak.run(args)
    assert not result.failures, result
    assert result.restarts >= 1 and len(result.recoveries) == result.restarts
    assert result.ffmpeg_after_stop == 0 and result.agent_exit == 0
