"""``platebridge-pod enroll``: write ``pod.yaml`` from the installer's answers, once they work.

The answers are validated by the real :class:`PodConfig`, each camera URL is probed with
ffprobe, and one real heartbeat (carrying the probe results) must be accepted by the portal;
then the pod's stream secret is fetched from the portal (``POST /api/pod/enroll``; a
``--stream-secret`` given is checked against it). Only then is the file written, atomically and
mode 0600. On any failure nothing is written. The key, the stream secret and camera passwords
are never printed.

Exit codes: 0 written; 2 bad answers (a ``--stream-secret`` that is not the portal's) or the
file exists (no ``--force``); 3 the portal or the key failed; 4 a camera failed; 5 the file
could not be written.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hmac
import os
import re
import socket
import ssl
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from platebridge.core.redact import REDACTED, redact_text
from platebridge.pod.check import CheckLine, check_camera
from platebridge.pod.config import ConfigError, PodConfig, parse_config
from platebridge.pod.enroll_portal import PortalAnswer, fetch_stream_secret, send_one_heartbeat

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_PORTAL = 3
EXIT_CAMERA = 4
EXIT_WRITE = 5
DEFAULT_OUTPUT = Path("/etc/platebridge/pod.yaml")
KEY_ENV = "PLATEBRIDGE_POD_KEY"
SECRET_ENV = "PLATEBRIDGE_STREAM_SECRET"  # noqa: S105 - a variable name
EPILOG = (
    "exit codes: 0 written; 2 bad answers (a --stream-secret that is not the portal's) or the "
    "file exists (no --force); 3 the portal or the key failed; 4 a camera failed; 5 the file "
    "could not be written"
)
#: Stands in for the stream secret while the answers are validated, before the portal hands
#: out the real one (never written: :func:`enroll` replaces it or stops).
_PENDING_SECRET = "pending-" + "0" * 24
_HEADER = (
    "# PlateBridge POD configuration, written by `platebridge-pod enroll`.\n"
    "# It holds this POD's API key, stream secret and camera credentials: keep it readable\n"
    "# by the agent only. Every key is described in docs/pod.md.\n"
)


class EnrollError(Exception):
    """A refusal with its exit code; the message is safe to print."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def add_parser(sub: Any) -> None:
    """Register ``enroll`` on the CLI's sub-parsers."""
    text = "check the portal, key and cameras, then write pod.yaml (nothing on failure)"
    sp = sub.add_parser("enroll", help=text, description=text, epilog=EPILOG)
    sp.add_argument("--portal", required=True, help="the portal's base URL, https://…")
    sp.add_argument(
        "--key", default=os.environ.get(KEY_ENV), help=f"the pod API key pbk_… (or ${KEY_ENV})"
    )
    sp.add_argument(
        "--stream-secret",
        default=os.environ.get(SECRET_ENV),
        help=f"the pod's stream secret (or ${SECRET_ENV}); default: fetched from the portal, "
        "which also checks one given here",
    )
    sp.add_argument("--pod-id", help="the POD's id in the portal (default: from the hostname)")
    sp.add_argument(
        "--camera",
        action="append",
        default=[],
        metavar="ID[:NAME]=URL",
        help="a camera: id, optional display name, rtsp:// URL (repeat for more)",
    )
    sp.add_argument("--advertise-address", help="'auto' (default), 'tailscale' or an IP")
    sp.add_argument(
        "--portal-ca-file",
        type=Path,
        help="PEM of a private CA that signs the portal's certificate",
    )
    sp.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="where to write")
    sp.add_argument("--force", action="store_true", help="replace an existing file")


# --- answers -> YAML tree ----------------------------------------------------------------------


def hostname_pod_id(hostname: str | None = None) -> str:
    """A pod id from the hostname: ``Gate PI.local`` → ``Gate-PI.local``."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", hostname or socket.gethostname())
    name = re.sub(r"^[^A-Za-z0-9]+", "", name)[:64].rstrip("-.")
    return name or "pod"


def parse_camera(spec: str, index: int) -> dict[str, str]:
    """``gate-1=rtsp://…`` or ``gate-1:Main gate=rtsp://…`` → a ``cameras`` entry."""
    head, sep, url = spec.partition("=")
    camera_id, _, name = head.partition(":")
    if not sep or not camera_id.strip() or not url.strip():
        raise EnrollError(EXIT_USAGE, f"--camera #{index + 1}: expected ID[:NAME]=rtsp://…")
    return {
        "camera_id": camera_id.strip(),
        "name": name.strip() or camera_id.strip(),
        "rtsp_url": url,
    }


def answers_tree(
    *,
    portal: str,
    key: str | None,
    stream_secret: str | None,
    cameras: Sequence[str],
    pod_id: str | None = None,
    advertise_address: str | None = None,
    portal_ca_file: Path | None = None,
) -> dict[str, Any]:
    """The YAML tree to write: only what was answered (defaults stay defaults)."""
    if not key:
        raise EnrollError(EXIT_USAGE, f"--key is required (or set {KEY_ENV})")
    if not cameras:
        raise EnrollError(EXIT_USAGE, "give at least one --camera ID[:NAME]=rtsp://…")
    tree: dict[str, Any] = {
        "pod_id": pod_id or hostname_pod_id(),
        "portal_url": portal.rstrip("/"),
        "api_key": key,
    }
    if stream_secret:  # else fetched from the portal once the heartbeat was accepted
        tree["stream_token_secret"] = stream_secret
    if advertise_address:
        tree["advertise_address"] = advertise_address
    if portal_ca_file is not None:
        tree["portal_ca_file"] = str(portal_ca_file.absolute())
    tree["cameras"] = [parse_camera(spec, i) for i, spec in enumerate(cameras)]
    return tree


def validate(tree: dict[str, Any]) -> PodConfig:
    """The real model (``${ENV}`` references in the answers are expanded, as at run time); a
    tree still without its stream secret is checked with a stand-in."""
    try:
        return parse_config({"stream_token_secret": _PENDING_SECRET, **tree})
    except ConfigError as exc:
        detail = str(exc).replace("Value error, ", "")  # pydantic's prefix, noise here
        raise EnrollError(EXIT_USAGE, f"invalid answer: {detail}") from None


def render_yaml(tree: dict[str, Any]) -> str:
    return _HEADER + yaml.safe_dump(tree, sort_keys=False, allow_unicode=True)


# --- checks ------------------------------------------------------------------------------------


def portal_verify(config: PodConfig) -> ssl.SSLContext | bool:
    try:
        return config.portal_verify()
    except (OSError, ssl.SSLError) as exc:
        raise EnrollError(
            EXIT_USAGE, f"--portal-ca-file: not a usable PEM CA file ({exc})"
        ) from None


async def probe_camera(config: PodConfig, index: int) -> CheckLine:
    line = await check_camera(config, config.cameras[index])
    if line.ok:
        return line
    if "401" in line.detail or "Unauthorized" in line.detail:
        return CheckLine(False, line.name, "wrong camera user/password (401 Unauthorized)")
    return CheckLine(False, line.name, f"cannot open the stream: {line.detail}")


# --- the file ----------------------------------------------------------------------------------


def check_output(path: Path, force: bool) -> None:
    """Refuse early (before any probe) when the file exists or cannot be written."""
    if path.exists() and not force:
        raise EnrollError(EXIT_USAGE, f"{path} exists: pass --force to replace it")
    if not path.parent.is_dir():
        raise EnrollError(EXIT_WRITE, f"directory {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise EnrollError(EXIT_WRITE, f"cannot write in {path.parent} (run as root?)")


def write_atomically(path: Path, text: str, force: bool) -> None:
    """Temp file in the same directory, mode 0600, fsync, rename; no partial file ever."""
    check_output(path, force)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as exc:
        raise EnrollError(EXIT_WRITE, f"cannot write in {path.parent}: {exc.strerror}") from None
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise EnrollError(EXIT_WRITE, f"cannot write {path}: {exc.strerror}") from None
    with contextlib.suppress(OSError):
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def summary(config: PodConfig, path: Path, cameras: Sequence[CheckLine]) -> list[str]:
    """What was written, secrets masked: the key as ``pbk_***``, camera URLs as ``rtsp://***@…``."""
    key = redact_text(config.api_key.get_secret_value())
    lines = [
        f"wrote {path} (mode 0600)",
        f"  pod_id:  {config.pod_id}",
        f"  portal:  {config.portal_url} (key {key if key.startswith('pbk_') else REDACTED})",
        f"  stream secret: {REDACTED} ({len(config.stream_token_secret.get_secret_value())} chars)",
    ]
    for cam, line in zip(config.cameras, cameras, strict=True):
        url = redact_text(cam.url, config.secrets)
        lines.append(f"  camera {cam.camera_id} ({cam.name}): {url} — {line.detail}")
    return lines


# --- the command -------------------------------------------------------------------------------


async def _checks(
    config: PodConfig, verify: ssl.SSLContext | bool
) -> tuple[list[CheckLine], PortalAnswer, PortalAnswer | None]:
    cameras = list(
        await asyncio.gather(*(probe_camera(config, i) for i in range(len(config.cameras))))
    )
    for line in cameras:
        print(line.render(), flush=True)
    portal = await send_one_heartbeat(config, cameras, verify)
    print(CheckLine(portal.ok, "portal", portal.detail).render(), flush=True)
    secret = await fetch_stream_secret(config, verify) if portal.ok else None
    return cameras, portal, secret


def settle_secret(tree: dict[str, Any], config: PodConfig, fetched: PortalAnswer) -> PodConfig:
    """Put the portal's stream secret into ``tree`` (none was given), or check the one given
    against it; the config to write. Prints one line, never the secret."""
    given = tree.get("stream_token_secret")
    if given is None:
        if not fetched.ok or fetched.stream_secret is None:
            print(CheckLine(False, "stream secret", fetched.detail).render(), flush=True)
            raise EnrollError(
                EXIT_PORTAL,
                f"stream secret: {fetched.detail}; pass --stream-secret (or {SECRET_ENV})",
            )
        tree["stream_token_secret"] = fetched.stream_secret
        print(CheckLine(True, "stream secret", "from the portal").render(), flush=True)
        return validate(tree)
    if not fetched.ok or fetched.stream_secret is None:
        # The key may not fetch it (an admin-created pod enrolled with a site key) or the
        # portal is older: the secret given stays, unchecked, as before the endpoint existed.
        print(f"WARN stream secret: the one given, not checked: {fetched.detail}", flush=True)
        return config
    mine = config.stream_token_secret.get_secret_value().encode()
    if not hmac.compare_digest(mine, fetched.stream_secret.encode()):
        print(CheckLine(False, "stream secret", "not the portal's").render(), flush=True)
        raise EnrollError(
            EXIT_USAGE,
            f"--stream-secret (or {SECRET_ENV}) is not this pod's stream secret at the portal "
            "(rotated since?): leave it out to use the portal's",
        )
    print(CheckLine(True, "stream secret", "the one given matches the portal's").render())
    return config


def enroll(args: argparse.Namespace) -> int:
    tree = answers_tree(
        portal=args.portal,
        key=args.key,
        stream_secret=args.stream_secret,
        cameras=args.camera,
        pod_id=args.pod_id,
        advertise_address=args.advertise_address,
        portal_ca_file=args.portal_ca_file,
    )
    config = validate(tree)
    check_output(args.output, args.force)
    cameras, portal, fetched = asyncio.run(_checks(config, portal_verify(config)))
    if not portal.ok or fetched is None:
        raise EnrollError(EXIT_PORTAL, portal.detail)
    config = settle_secret(tree, config, fetched)
    failed = [line for line in cameras if not line.ok]
    if failed:
        raise EnrollError(EXIT_CAMERA, "; ".join(f"{x.name}: {x.detail}" for x in failed))
    write_atomically(args.output, render_yaml(tree), args.force)
    for line in summary(config, args.output, cameras):
        print(line)
    if portal.registered:
        print("NOTE: the portal registered this pod now, under the site enrollment key's site")
    return EXIT_OK


def run_enroll(args: argparse.Namespace) -> int:
    try:
        return enroll(args)
    except EnrollError as exc:
        print(f"platebridge-pod enroll: nothing written: {exc}", file=sys.stderr)
        return exc.code
