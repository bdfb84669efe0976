"""The shipped systemd units: ``systemd-analyze verify`` accepts them, and each ExecStart is a
command line the program's own parser accepts (so a renamed flag breaks this test, not a site).

systemd does not run here; verify needs the ExecStart binary to exist, so the units are checked
with ``/opt/platebridge/venv`` pointed at this checkout's virtualenv.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from platebridge.pod.cli import _parser as pod_parser
from platebridge.portal.cli import build_parser

UNITS = Path(__file__).resolve().parents[2] / "packaging" / "systemd"
VENV = Path(sys.prefix)
INSTANCE = "8081"

pytestmark = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="needs systemd-analyze (Debian: systemd)"
)


def _units() -> list[Path]:
    return sorted(UNITS.glob("*.service"))


def _instantiated(tmp: Path) -> list[Path]:
    out = []
    for unit in _units():
        text = unit.read_text().replace("/opt/platebridge/venv", str(VENV))
        name = unit.name.replace("@.service", f"@{INSTANCE}.service")
        (tmp / name).write_text(text)
        out.append(tmp / name)
    return out


def test_there_are_portal_units() -> None:
    names = {u.name for u in _units()}
    assert {"platebridge-portal@.service", "platebridge-portal-migrate.service"} <= names


@pytest.mark.e2e  # runs systemd-analyze
def test_systemd_analyze_verify_accepts_every_unit(tmp_path: Path) -> None:
    units = _instantiated(tmp_path)
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *map(str, units)],
        capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False,
    )  # fmt: skip
    # verify exits 0 on some parse errors ("ignoring"): any message at all is a failure.
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


@pytest.mark.parametrize("unit", _units(), ids=lambda u: u.name)
def test_exec_start_is_a_valid_command_line(unit: Path) -> None:
    lines = [ln for ln in unit.read_text().splitlines() if ln.startswith("ExecStart=")]
    assert len(lines) == 1
    argv = shlex.split(lines[0].removeprefix("ExecStart=").replace("%i", INSTANCE))
    program = Path(argv[0]).name
    assert argv[0] == f"/opt/platebridge/venv/bin/{program}"
    if program == "platebridge-portal":
        build_parser().parse_args(argv[1:])  # SystemExit on an unknown command or flag
    elif program == "platebridge-pod":
        pod_parser().parse_args(argv[1:])
    else:
        pytest.fail(f"unknown program in {unit.name}: {program}")
