"""``platebridge-pod enroll`` as a process, against a real portal and a real RTSP camera.

Each refusal must name the cause, exit with its code and leave no file behind; no output may
contain the key, the stream secret or the camera password. The command is the issue's:
``--portal URL --key pbk_…`` (plus cameras); the stream secret comes from the portal.
"""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest
import yaml

from platebridge.pod.config import load_config
from tests.support.builders import stream_token
from tests.support.camera import TestCamera, camera_available
from tests.support.portal import (
    SeededCompany,
    enrollment_key,
    new_sqlite_url,
    portal_process,
    rotate_pod_key,
    seed_company,
    sql,
)
from tests.support.procs import REPO, VENV_BIN, Proc, free_port, wait_for_http, wait_until

pytestmark = pytest.mark.e2e

CAM_USER = "admin"
CAM_PASSWORD = "cam-Pw-7c1e9a"


@dataclass
class Site:
    base: str
    db_url: str
    seeded: SeededCompany
    camera: TestCamera
    log: Path  # the portal's output, at INFO

    def portal_log(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass
class Result:
    code: int
    out: str

    def assert_no_secrets(self, site: Site, *extra: str) -> None:
        for secret in (site.seeded.api_key, site.seeded.stream_token_secret, CAM_PASSWORD, *extra):
            assert secret not in self.out, f"a secret leaked into the output:\n{self.out}"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    if not camera_available():
        pytest.fail("needs /usr/bin/python3 with GStreamer RTSP server and ffmpeg")
    tmp = tmp_path_factory.mktemp("enroll")
    db_url = new_sqlite_url(tmp)
    with (
        portal_process(db_url, log_dir=tmp, log_level="info") as portal,
        TestCamera(tmp, user=CAM_USER, password=CAM_PASSWORD) as camera,
    ):
        yield Site(portal.url, db_url, seed_company(db_url), camera, portal.log_path)


def enroll(
    site: Site,
    out: Path,
    *args: str,
    key: str | None = None,
    cam: str = "",
    prefix: tuple[str, ...] = (),
    secret: str | None = None,
) -> Result:
    """``enroll --portal --key --pod-id --camera`` (``--stream-secret`` only with ``secret``)."""
    argv = [*prefix, str(VENV_BIN / "platebridge-pod"), "enroll", "--output", str(out)]
    argv += ["--key", key or site.seeded.api_key, "--pod-id", site.seeded.pod_id]
    argv += [f"--stream-secret={secret}"] if secret is not None else []  # may start with "-"
    argv += ["--camera", cam or f"gate-camera-1:Main Gate={site.camera.url}"]
    if "--portal" not in args:
        argv += ["--portal", site.base]
    proc = subprocess.run([*argv, *args], capture_output=True, text=True, timeout=60, check=False)
    return Result(proc.returncode, proc.stdout + proc.stderr)


def test_success_writes_a_config_the_agent_loads(site: Site, tmp_path: Path) -> None:
    out = tmp_path / "pod.yaml"
    result = enroll(site, out, "--advertise-address", "127.0.0.1")
    assert result.code == 0, result.out
    result.assert_no_secrets(site)
    assert "OK   portal: reachable, key accepted" in result.out
    assert "OK   stream secret: from the portal" in result.out
    assert "reachable, h264 320x240" in result.out
    assert f"rtsp://***@127.0.0.1:{site.camera.port}/stream" in result.out
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["pod.yaml"]  # no temp file left
    config = load_config(out)
    assert config.pod_id == site.seeded.pod_id and config.portal_url == site.base
    assert config.api_key.get_secret_value() == site.seeded.api_key
    assert config.stream_token_secret.get_secret_value() == pod_secret(site, site.seeded.pod_id)
    assert [(c.camera_id, c.name, c.url) for c in config.cameras] == [
        ("gate-camera-1", "Main Gate", site.camera.url)
    ]
    assert config.advertise_address == "127.0.0.1"
    # the one heartbeat reached the portal: the camera is registered, without its password
    rows = sql(
        site.db_url,
        "SELECT c.camera_id, c.rtsp_url, c.status FROM cameras c JOIN pods p ON p.id = c.pod_id "
        "WHERE p.pod_id = :pod_id",
        pod_id=site.seeded.pod_id,
    )
    assert rows == [("gate-camera-1", f"rtsp://127.0.0.1:{site.camera.port}/stream", "active")]


def test_existing_file_is_kept_without_force(site: Site, tmp_path: Path) -> None:
    out = tmp_path / "pod.yaml"
    out.write_text("old: true\n")
    result = enroll(site, out)
    assert result.code == 2, result.out
    assert "exists: pass --force" in result.out
    assert out.read_text() == "old: true\n"
    result = enroll(site, out, "--force")
    assert result.code == 0, result.out
    assert yaml.safe_load(out.read_text())["pod_id"] == site.seeded.pod_id


def test_wrong_key_writes_nothing(site: Site, tmp_path: Path) -> None:
    out = tmp_path / "pod.yaml"
    wrong = "pbk_NotAKeyOfThisPortal0123456789abcdef"
    result = enroll(site, out, key=wrong)
    assert result.code == 3, result.out
    assert "the portal refused the key (unknown or revoked)" in result.out
    assert "nothing written" in result.out
    result.assert_no_secrets(site, wrong)
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_revoked_key_writes_nothing(site: Site, tmp_path: Path) -> None:
    other = seed_company(site.db_url, pod_id="revoked-pod")
    rotate_pod_key(site.db_url, other.company_id, other.pod_id)  # other.api_key is now revoked
    out = tmp_path / "pod.yaml"
    result = enroll(site, out, "--pod-id", other.pod_id, key=other.api_key)
    assert result.code == 3, result.out
    assert "refused the key (unknown or revoked)" in result.out
    result.assert_no_secrets(site, other.api_key)
    assert not out.exists()


def test_key_of_another_pod_names_pod_id(site: Site, tmp_path: Path) -> None:
    out = tmp_path / "pod.yaml"
    result = enroll(site, out, "--pod-id", "some-other-pod")
    assert result.code == 3, result.out
    assert "the key belongs to another pod than 'some-other-pod'" in result.out
    assert not out.exists()


def pod_secret(site: Site, pod_id: str) -> str:
    """The pod's stream secret as the portal's database holds it."""
    rows = sql(site.db_url, "SELECT stream_token_secret FROM pods WHERE pod_id = :p", p=pod_id)
    assert len(rows) == 1, rows
    return str(rows[0][0])


def test_given_stream_secret_is_checked_against_the_portals(site: Site, tmp_path: Path) -> None:
    out = tmp_path / "pod.yaml"
    wrong = "Not-the-pods-secret-0123456789"
    result = enroll(site, out, secret=wrong)
    assert result.code == 2, result.out
    assert "is not this pod's stream secret at the portal" in result.out
    assert "FAIL stream secret: not the portal's" in result.out
    result.assert_no_secrets(site, wrong)
    assert not out.exists() and list(tmp_path.iterdir()) == []
    result = enroll(site, out, secret=site.seeded.stream_token_secret)
    assert result.code == 0, result.out
    assert "OK   stream secret: the one given matches the portal's" in result.out
    result.assert_no_secrets(site)
    assert load_config(out).stream_token_secret.get_secret_value() == (
        site.seeded.stream_token_secret
    )


def test_site_enrollment_key_registers_the_pod_and_gets_its_secret(
    site: Site, tmp_path: Path
) -> None:
    out = tmp_path / "pod.yaml"
    key = enrollment_key(site.db_url, site.seeded.site_id)
    result = enroll(site, out, "--pod-id", "enrolled-pod", key=key)
    assert result.code == 0, result.out
    assert "NOTE: the portal registered this pod now" in result.out
    assert "OK   stream secret: from the portal" in result.out
    assert "rotate-secret" not in result.out  # nothing is left to do by hand
    secret = pod_secret(site, "enrolled-pod")  # generated by the portal at registration
    result.assert_no_secrets(site, key, secret)
    log = site.portal_log()
    assert "pod enrolled-pod fetched its stream secret" in log  # the portal's record of it
    for value in (secret, key, site.seeded.stream_token_secret, site.seeded.api_key):
        assert value not in log
    config = load_config(out)
    assert config.pod_id == "enrolled-pod"
    assert config.api_key.get_secret_value() == key
    assert config.stream_token_secret.get_secret_value() == secret
    rows = sql(site.db_url, "SELECT site_id FROM pods WHERE pod_id = 'enrolled-pod'")
    assert [str(r[0]).replace("-", "") for r in rows] == [site.seeded.site_id.replace("-", "")]
    # The same key for the admin-created pod of the site: its secret is not handed out.
    out2 = tmp_path / "admin-pod.yaml"
    result = enroll(site, out2, key=key)
    assert result.code == 3, result.out
    assert "not_registered_by_key" in result.out and "pass --stream-secret" in result.out
    result.assert_no_secrets(site, key)
    assert not out2.exists()


def test_unreachable_portal_writes_nothing(site: Site, tmp_path: Path) -> None:
    out = tmp_path / "pod.yaml"
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = enroll(site, out, "--portal", dead)
    assert result.code == 3, result.out
    assert f"cannot reach the portal at {dead}: Connection refused" in result.out
    result.assert_no_secrets(site)
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_tls_failure_is_named(site: Site, tmp_path: Path) -> None:
    out = tmp_path / "pod.yaml"
    https = site.base.replace("http://", "https://")  # the portal speaks plain HTTP there
    result = enroll(site, out, "--portal", https)
    assert result.code == 3, result.out
    assert f"cannot reach the portal at {https}: TLS error" in result.out
    assert not out.exists()


def test_wrong_camera_password_writes_nothing(site: Site, tmp_path: Path) -> None:
    out = tmp_path / "pod.yaml"
    bad = "Wrong-pw-55e0"
    url = f"rtsp://{CAM_USER}:{bad}@127.0.0.1:{site.camera.port}/stream"
    result = enroll(site, out, cam=f"gate-camera-1={url}")
    assert result.code == 4, result.out
    assert "FAIL camera gate-camera-1: wrong camera user/password" in result.out
    result.assert_no_secrets(site, bad)
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_unreachable_camera_writes_nothing(site: Site, tmp_path: Path) -> None:
    out = tmp_path / "pod.yaml"
    url = f"rtsp://{CAM_USER}:{CAM_PASSWORD}@127.0.0.1:{free_port()}/stream"
    result = enroll(site, out, cam=f"gate-camera-2={url}")
    assert result.code == 4, result.out
    assert "FAIL camera gate-camera-2: cannot open the stream" in result.out
    assert "Connection refused" in result.out
    result.assert_no_secrets(site)
    assert not out.exists()


def test_unwritable_directory_is_refused_before_any_check(site: Site) -> None:
    # "/" is not writable for an unprivileged user: the technician who forgot sudo
    nobody = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")
    result = enroll(site, Path("/pod-enroll-test.yaml"), prefix=nobody if os.geteuid() == 0 else ())
    assert result.code == 5, result.out
    assert "cannot write in / (run as root?)" in result.out
    assert "camera" not in result.out and "portal:" not in result.out  # nothing was probed
    assert not Path("/pod-enroll-test.yaml").exists()


def test_bad_answers_exit_2_before_any_probe(site: Site, tmp_path: Path) -> None:
    out = tmp_path / "pod.yaml"
    result = enroll(site, out, cam="gate-camera-1=http://cam.example/stream")
    assert result.code == 2, result.out
    assert "cameras[0].rtsp_url: must be an rtsp:// or rtsps:// URL" in result.out
    assert "portal:" not in result.out  # nothing was contacted
    assert not out.exists()


def test_agent_runs_from_the_enrolled_config_as_the_unit_starts_it(
    site: Site, tmp_path: Path
) -> None:
    out = tmp_path / "pod.yaml"
    assert enroll(site, out, "--advertise-address", "127.0.0.1").code == 0
    # only what a test machine needs on top: a free port and a private HLS directory
    port = free_port()
    raw = yaml.safe_load(out.read_text())
    hls = str(tmp_path / "hls")
    raw.update(listen_host="127.0.0.1", listen_port=port, hls_dir=hls)
    out.write_text(yaml.safe_dump(raw))
    unit = (REPO / "packaging" / "systemd" / "platebridge-pod.service").read_text()
    exec_start = next(ln for ln in unit.splitlines() if ln.startswith("ExecStart="))
    argv = shlex.split(exec_start.removeprefix("ExecStart="))
    argv[0] = str(VENV_BIN / "platebridge-pod")  # the installer's /opt/platebridge/venv
    argv[argv.index("/etc/platebridge/pod.yaml")] = str(out)
    try:
        with Proc(argv, log_path=tmp_path / "agent.log", cwd=tmp_path) as agent:
            health = f"http://127.0.0.1:{port}/health"
            wait_for_http(health, timeout=30, proc=agent.popen)
            wait_until(
                lambda: httpx.get(health).json()["cameras"][0]["status"] == "active",
                timeout=30,
                what="camera active",
            )
            # A viewer's token signed with the portal's secret for this pod is accepted.
            secret = pod_secret(site, site.seeded.pod_id)
            good = stream_token("gate-camera-1", pod_id=site.seeded.pod_id, secret=secret)
            stream = f"http://127.0.0.1:{port}/stream"
            wait_until(
                lambda: httpx.get(stream, params={"token": good}).status_code == 200,
                timeout=30,
                what="the agent accepts a token signed with the portal's secret",
            )
            bad = stream_token("gate-camera-1", pod_id=site.seeded.pod_id, secret="x" * 43)
            assert httpx.get(stream, params={"token": bad}).status_code == 401
            query = "SELECT ip_address, stream_port FROM pods WHERE pod_id = :pod_id"
            wait_until(  # the agent's own heartbeats reach the portal (enroll sent port 8000)
                lambda: sql(site.db_url, query, pod_id=site.seeded.pod_id) == [("127.0.0.1", port)],
                timeout=30,
                what="heartbeat with the agent's port",
            )
            assert agent.stop(timeout=20) == 0  # SIGTERM, as systemd's KillMode=mixed sends it
    finally:
        left = [
            p for p in psutil.process_iter(["cmdline"]) if hls in " ".join(p.info["cmdline"] or [])
        ]
        for proc in left:  # never leave an ffmpeg behind, even when failing
            proc.kill()
    assert not left, "the agent left ffmpeg processes behind"
    output = (tmp_path / "agent.log").read_text()
    assert CAM_PASSWORD not in output and site.seeded.api_key not in output
