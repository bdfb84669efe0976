"""``platebridge-pod``: run the agent, print/send a heartbeat, or check the installation."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path

from platebridge import __version__
from platebridge.core.redact import install_log_redaction
from platebridge.pod.config import ConfigError, PodConfig, load_config

DEFAULT_CONFIG = Path("/etc/platebridge/pod.yaml")
EXIT_CONFIG = 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="platebridge-pod", description=__doc__)
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    for name, text in (
        ("run", "run the agent (cameras, /stream on port 8000, heartbeats)"),
        ("heartbeat", "send one heartbeat now (or print it with --dry-run)"),
        ("check", "check config, ffmpeg, cameras and portal; non-zero exit on any failure"),
    ):
        sp = sub.add_parser(name, help=text, description=text)
        sp.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="path to config.yaml")
        if name == "heartbeat":
            sp.add_argument(
                "--dry-run", action="store_true", help="print the payload, send nothing"
            )
    from platebridge.pod.enroll import add_parser

    add_parser(sub)
    return p


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # it logs full URLs
    install_log_redaction()  # websockets logs the tunnel's Authorization header at DEBUG


def _heartbeat(config: PodConfig, dry_run: bool) -> int:
    from platebridge.core.http_client import new_async_client
    from platebridge.pod.heartbeat import build_payload, send_heartbeat

    payload = build_payload(config)
    if dry_run:
        print(json.dumps(payload.model_dump(mode="json", exclude_none=True), indent=2))
        return 0

    async def send() -> bool:
        async with new_async_client(
            timeout=config.heartbeat_timeout, component="pod", verify=config.portal_verify()
        ) as client:
            result = await send_heartbeat(client, config, payload)
        print(result.message)
        return result.outcome == "ok"

    return 0 if asyncio.run(send()) else 1


def _check(config: PodConfig) -> int:
    from platebridge.pod.check import run_checks

    ok = asyncio.run(run_checks(config, lambda line: print(line.render(), flush=True)))
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "enroll":
        from platebridge.pod.enroll import run_enroll

        return run_enroll(args)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        prefix = "FAIL config: " if args.command == "check" else "platebridge-pod: config error: "
        print(f"{prefix}{exc}", file=sys.stdout if args.command == "check" else sys.stderr)
        return EXIT_CONFIG
    _setup_logging(config.log_level)
    if args.command == "heartbeat":
        return _heartbeat(config, args.dry_run)
    if args.command == "check":
        return _check(config)

    from platebridge.pod.agent import ListenError, run_agent

    try:
        return asyncio.run(run_agent(config))
    except ListenError as exc:
        logging.getLogger("platebridge.pod").error("%s", exc)
        return 1
    except OSError as exc:
        logging.getLogger("platebridge.pod").error("cannot start: %s", exc.strerror or exc)
        return 1
