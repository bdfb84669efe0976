"""``enroll`` without processes: answers → YAML the agent loads, the redacted summary, the file."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import yaml

from platebridge.pod import enroll
from platebridge.pod.check import CheckLine
from platebridge.pod.cli import main
from platebridge.pod.config import load_config
from platebridge.pod.enroll_portal import PortalAnswer

KEY = "pbk_UnitTestKey0123456789abcdef"
SECRET = "unit-stream-secret-0123456789"
CAM_PW = "Unit-cam-pw-42"
CAM_URL = f"rtsp://admin:{CAM_PW}@10.0.0.5:554/stream1"


def tree(**extra: object) -> dict[str, object]:
    values: dict[str, object] = {
        "portal": "https://portal.example/",
        "key": KEY,
        "stream_secret": SECRET,
        "cameras": [f"gate-1:Main gate={CAM_URL}", "side=rtsp://10.0.0.6/live"],
        "pod_id": "main-gate-pod",
    }
    values.update(extra)
    return enroll.answers_tree(**values)  # type: ignore[arg-type]


def test_rendered_yaml_loads_as_the_same_config(tmp_path: Path) -> None:
    answers = tree(advertise_address="192.168.1.20")
    path = tmp_path / "pod.yaml"
    path.write_text(enroll.render_yaml(answers))
    loaded = load_config(path)
    assert loaded == enroll.validate(answers)
    assert loaded.portal_url == "https://portal.example"
    assert [(c.camera_id, c.name, c.url) for c in loaded.cameras] == [
        ("gate-1", "Main gate", CAM_URL),
        ("side", "side", "rtsp://10.0.0.6/live"),
    ]
    assert loaded.advertise_address == "192.168.1.20"
    text = path.read_text()
    assert text.startswith("# PlateBridge POD configuration")
    assert "listen_port" not in text and "hls_dir" not in text  # defaults stay defaults


def test_env_references_are_kept_in_the_file_and_expanded_for_checks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("UNIT_CAM_PW", CAM_PW)
    answers = tree(cameras=["gate-1=rtsp://admin:${UNIT_CAM_PW}@10.0.0.5/stream"])
    assert "${UNIT_CAM_PW}" in enroll.render_yaml(answers)
    assert enroll.validate(answers).cameras[0].url == CAM_URL.replace(":554/stream1", "/stream")


def test_summary_masks_key_secret_and_camera_password(tmp_path: Path) -> None:
    config = enroll.validate(tree())
    probes = [CheckLine(True, "camera gate-1", "reachable, h264 1920x1080")] * 2
    text = "\n".join(enroll.summary(config, tmp_path / "pod.yaml", probes))
    assert KEY not in text and SECRET not in text and CAM_PW not in text
    assert "key pbk_***" in text
    assert "rtsp://***@10.0.0.5:554/stream1 — reachable, h264 1920x1080" in text
    assert "camera side (side): rtsp://10.0.0.6/live" in text


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("gate-1=rtsp://h/s", {"camera_id": "gate-1", "name": "gate-1", "rtsp_url": "rtsp://h/s"}),
        (
            "gate-1:Main gate=rtsp://h/s?a=b",
            {"camera_id": "gate-1", "name": "Main gate", "rtsp_url": "rtsp://h/s?a=b"},
        ),
    ],
)
def test_camera_spec(spec: str, expected: dict[str, str]) -> None:
    assert enroll.parse_camera(spec, 0) == expected


@pytest.mark.parametrize("spec", ["gate-1", "=rtsp://h/s", "gate-1=", ":Name=rtsp://h/s"])
def test_bad_camera_spec_is_a_usage_error(spec: str) -> None:
    with pytest.raises(enroll.EnrollError) as err:
        enroll.parse_camera(spec, 2)
    assert err.value.code == enroll.EXIT_USAGE and "--camera #3" in str(err.value)


def test_pod_id_from_hostname() -> None:
    assert enroll.hostname_pod_id("gate-pi") == "gate-pi"
    assert enroll.hostname_pod_id("Gate PI (2).local") == "Gate-PI-2-.local"
    assert enroll.hostname_pod_id("--x--") == "x"
    assert enroll.hostname_pod_id("___") == "pod"
    assert len(enroll.hostname_pod_id("a" * 100)) == 64
    enroll.validate(tree(pod_id=enroll.hostname_pod_id("Gate PI (2).local")))


def test_write_is_atomic_0600_and_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "pod.yaml"
    enroll.write_atomically(path, "a: 1\n", force=False)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_text() == "a: 1\n"
    with pytest.raises(enroll.EnrollError) as err:
        enroll.write_atomically(path, "a: 2\n", force=False)
    assert err.value.code == enroll.EXIT_USAGE and path.read_text() == "a: 1\n"
    enroll.write_atomically(path, "a: 3\n", force=True)
    assert path.read_text() == "a: 3\n" and [p.name for p in tmp_path.iterdir()] == ["pod.yaml"]
    with pytest.raises(enroll.EnrollError) as err:
        enroll.write_atomically(tmp_path / "missing" / "pod.yaml", "a: 1\n", force=False)
    assert err.value.code == enroll.EXIT_WRITE and "does not exist" in str(err.value)


def cli(tmp_path: Path, *args: str) -> list[str]:
    return [
        "enroll",
        "--portal",
        "https://portal.example",
        "--output",
        str(tmp_path / "p.yaml"),
        *args,
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--stream-secret", SECRET, "--camera", f"g={CAM_URL}"], "--key is required"),
        (["--key", KEY, "--stream-secret", SECRET], "at least one --camera"),
        (
            ["--key", KEY, "--stream-secret", "short", "--camera", f"g={CAM_URL}"],
            "invalid answer: stream_token_secret",
        ),
        (
            [
                "--key",
                KEY,
                "--stream-secret",
                SECRET,
                "--camera",
                f"g={CAM_URL}",
                "--pod-id",
                "a b",
            ],
            "invalid answer: pod_id",
        ),
    ],
)
def test_usage_errors_exit_2_and_print_no_secret(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    message: str,
) -> None:
    monkeypatch.delenv(enroll.KEY_ENV, raising=False)
    monkeypatch.delenv(enroll.SECRET_ENV, raising=False)
    assert main(cli(tmp_path, *args)) == enroll.EXIT_USAGE
    out = capsys.readouterr()
    assert message in out.err and "nothing written" in out.err
    for secret in (KEY, SECRET, CAM_PW):
        assert secret not in out.out + out.err
    assert list(tmp_path.iterdir()) == []


def test_secrets_can_come_from_the_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(enroll.KEY_ENV, KEY)
    monkeypatch.setenv(enroll.SECRET_ENV, SECRET)
    (tmp_path / "p.yaml").write_text("keep: me\n")  # refused before any probe or heartbeat
    assert main(cli(tmp_path, "--camera", f"g={CAM_URL}")) == enroll.EXIT_USAGE
    assert "exists: pass --force" in capsys.readouterr().err
    assert yaml.safe_load((tmp_path / "p.yaml").read_text()) == {"keep": "me"}


def test_bad_portal_ca_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate\n")
    args = ["--key", KEY, "--stream-secret", SECRET, "--camera", f"g={CAM_URL}"]
    assert main(cli(tmp_path, *args, "--portal-ca-file", str(bad))) == enroll.EXIT_USAGE
    assert "--portal-ca-file: not a usable PEM CA file" in capsys.readouterr().err
    assert not (tmp_path / "p.yaml").exists()


# --- the stream secret: fetched from the portal, or the one given checked against it ----------

FETCHED = PortalAnswer(True, "from the portal", stream_secret="portal-secret-0123456789abcdef")


def test_no_secret_given_takes_the_portals(capsys: pytest.CaptureFixture[str]) -> None:
    answers = tree(stream_secret=None)
    assert "stream_token_secret" not in answers
    config = enroll.settle_secret(answers, enroll.validate(answers), FETCHED)
    assert config.stream_token_secret.get_secret_value() == FETCHED.stream_secret
    assert answers["stream_token_secret"] == FETCHED.stream_secret  # what is written
    out = capsys.readouterr().out
    assert "OK   stream secret: from the portal" in out
    assert str(FETCHED.stream_secret) not in out and str(FETCHED.stream_secret) not in repr(FETCHED)


def test_no_secret_given_and_none_fetched_is_a_portal_failure() -> None:
    answers = tree(stream_secret=None)
    refused = PortalAnswer(False, "the portal refused the stream secret (HTTP 403 x): y")
    with pytest.raises(enroll.EnrollError) as err:
        enroll.settle_secret(answers, enroll.validate(answers), refused)
    assert err.value.code == enroll.EXIT_PORTAL
    assert "HTTP 403" in str(err.value) and "pass --stream-secret" in str(err.value)
    assert "stream_token_secret" not in answers


def test_a_given_secret_must_be_the_portals(capsys: pytest.CaptureFixture[str]) -> None:
    answers = tree()
    with pytest.raises(enroll.EnrollError) as err:
        enroll.settle_secret(answers, enroll.validate(answers), FETCHED)
    assert err.value.code == enroll.EXIT_USAGE
    assert "is not this pod's stream secret at the portal" in str(err.value)
    same = PortalAnswer(True, "from the portal", stream_secret=SECRET)
    assert enroll.settle_secret(answers, enroll.validate(answers), same).pod_id == "main-gate-pod"
    assert "OK   stream secret: the one given matches" in capsys.readouterr().out
    assert answers["stream_token_secret"] == SECRET


def test_a_given_secret_stays_when_the_portal_cannot_tell(
    capsys: pytest.CaptureFixture[str],
) -> None:
    answers = tree()
    older = PortalAnswer(False, "this portal does not hand out stream secrets (older)")
    config = enroll.settle_secret(answers, enroll.validate(answers), older)
    assert config.stream_token_secret.get_secret_value() == SECRET
    assert "WARN stream secret: the one given, not checked: this portal" in capsys.readouterr().out
