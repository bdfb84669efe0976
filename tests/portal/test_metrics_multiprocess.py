"""Several portal processes, one ``PROMETHEUS_MULTIPROC_DIR``: any process's scrape shows the
counters summed over all, and a live gauge of a process that shut down is gone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.e2e  # starts Python processes (tests/conftest.py guards it)

CHILD = """
import sys
from platebridge.portal.metrics import instruments as m
from platebridge.portal.metrics.collect import Fleet, render
m.HEARTBEATS.labels("ok").inc(int(sys.argv[1]))
m.ACTIVE_VIEWERS.labels("proxy", "live").inc()
if sys.argv[2] == "dead":
    from prometheus_client import multiprocess
    import os
    multiprocess.mark_process_dead(os.getpid())
else:
    sys.stdout.write(render(Fleet()).decode())
"""


NAMES = ("platebridge_portal_heartbeats_total", "platebridge_portal_active_viewers")


def values(text: str) -> dict[str, float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name in NAMES:
                out[s.name] = float(s.value)
    return out


def test_processes_share_the_directory(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}

    def child(*args: str) -> str:
        argv = [sys.executable, "-c", CHILD, *args]
        return subprocess.run(argv, env=env, check=True, capture_output=True, text=True).stdout

    child("2", "dead")  # a process that counted 2 heartbeats and a viewer, then shut down
    seen = values(child("3", "render"))
    assert seen["platebridge_portal_heartbeats_total"] == 5  # counters survive their process
    assert seen["platebridge_portal_active_viewers"] == 1  # only the live process's viewer
