"""The POD's systemd unit and installer: the unit runs a command the CLI really has, with the
paths the installer creates; ``systemd-analyze verify`` accepts it; the installer refuses bad
invocations before touching the machine and never echoes an argument (it may be a secret)."""

from __future__ import annotations

import configparser
import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from platebridge.pod import cli, enroll
from platebridge.pod.config import DEFAULT_HLS_DIR
from tests.support.procs import REPO, VENV_BIN

UNIT = REPO / "packaging" / "systemd" / "platebridge-pod.service"
INSTALLER = REPO / "scripts" / "install-pod.sh"
VENV_EXE = "/opt/platebridge/venv/bin/platebridge-pod"


def unit() -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=True, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string(UNIT.read_text())
    return parser


def test_exec_start_is_the_real_run_command() -> None:
    argv = shlex.split(unit()["Service"]["ExecStart"])
    assert argv[0] == VENV_EXE
    args = cli._parser().parse_args(argv[1:])
    assert args.command == "run"
    assert args.config == cli.DEFAULT_CONFIG == enroll.DEFAULT_OUTPUT
    assert unit()["Unit"]["ConditionPathExists"] == str(cli.DEFAULT_CONFIG)


def test_unit_user_directories_and_hardening() -> None:
    service = unit()["Service"]
    assert service["User"] == service["Group"] == "platebridge"
    assert service["Restart"] == "always"
    assert service["RestartPreventExitStatus"] == str(cli.EXIT_CONFIG)  # config errors: no loop
    # the agent writes HLS into its RuntimeDirectory (the config default) and state under /var/lib
    assert Path("/run") / service["RuntimeDirectory"] == DEFAULT_HLS_DIR.parent
    assert service["StateDirectory"] == "platebridge"
    assert service["ReadWritePaths"] == service["WorkingDirectory"] == "/var/lib/platebridge"
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "RestrictSUIDSGID": "yes",
        "CapabilityBoundingSet": "",
    }.items():
        assert service[key] == value, key
    assert unit()["Install"]["WantedBy"] == "multi-user.target"


def test_installer_paths_match_the_unit() -> None:
    text = INSTALLER.read_text()
    service = unit()["Service"]
    assert f"VENV={Path(VENV_EXE).parent.parent}" in text
    assert "CONFIG=$ETC/pod.yaml" in text and f"ETC={cli.DEFAULT_CONFIG.parent}" in text
    assert f"STATE={service['WorkingDirectory']}" in text
    assert f"USER_NAME={service['User']}" in text
    assert '"$REPO/packaging/systemd/$UNIT"' in text and "UNIT=platebridge-pod.service" in text


@pytest.mark.e2e
def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing (Debian package systemd)"
    # The one path that only exists after the installer ran: point it at this checkout's venv.
    copy = tmp_path / UNIT.name
    copy.write_text(UNIT.read_text().replace(VENV_EXE, str(VENV_BIN / "platebridge-pod")))
    result = subprocess.run(
        [analyze, "verify", str(copy)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr
    assert not result.stderr.strip(), result.stderr
    # and the unchanged unit fails only for that missing executable
    result = subprocess.run(
        [analyze, "verify", str(UNIT)], capture_output=True, text=True, timeout=60, check=False
    )
    assert f"Command {VENV_EXE} is not executable" in result.stderr or Path(VENV_EXE).exists()


def run_installer(*args: str, user: int | None = None) -> subprocess.CompletedProcess[str]:
    argv = ["bash", str(INSTALLER), *args]
    if user is not None:
        argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *argv]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.e2e
def test_installer_refuses_before_doing_anything() -> None:
    assert subprocess.run(["bash", "-n", str(INSTALLER)], check=False).returncode == 0
    secret = "pbk_MustNotBeEchoed0123456789"
    result = run_installer(secret)
    assert result.returncode == 1 and "unexpected argument" in result.stderr
    assert secret not in result.stdout + result.stderr
    result = run_installer("--key")
    assert result.returncode == 1 and "--key needs a value" in result.stderr
    result = run_installer("--portal", "https://p.example", "--force")
    assert result.returncode == 1 and "not an installer option" in result.stderr
    result = run_installer("--help")
    assert result.returncode == 0 and "--uninstall" in result.stdout
    if os.geteuid() == 0:  # as root: the first check after the options, then as nobody
        result = run_installer("--purge")
        assert result.returncode == 1 and "--purge goes with --uninstall" in result.stderr
        result = run_installer("--portal", "https://p.example", "--key", secret, user=65534)
    else:
        result = run_installer("--portal", "https://p.example", "--key", secret)
    assert result.returncode == 1 and "run as root" in result.stderr
    assert secret not in result.stdout + result.stderr
