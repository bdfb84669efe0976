"""``platebridge-portal``: migrate, serve and administer tenants, users and PODs.

Every command accepts ``--json`` and then prints exactly one JSON object. Errors exit with
status 1 and one line on stderr (usage errors: argparse's status 2).

Adding commands: write a module here with ``register(reg: Registry) -> None`` (see
:mod:`platebridge.portal.cli.base`) and add it to :data:`COMMAND_MODULES` (help order).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence

from sqlalchemy.exc import SQLAlchemyError

from platebridge.core.errors import PlateBridgeError
from platebridge.core.redact import redact_text
from platebridge.portal.cli import audit, cameras, pods, serve, tenancy, users
from platebridge.portal.cli.base import CliError, Registry, settings
from platebridge.portal.services import admin

COMMAND_MODULES: tuple[Callable[[Registry], None], ...] = (
    serve.register,
    tenancy.register,
    users.register,
    pods.register,
    cameras.register,
    audit.register,
)

__all__ = ["COMMAND_MODULES", "CliError", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="platebridge-portal",
        description="PlateBridge portal. Database: PLATEBRIDGE_DATABASE_URL "
        "(unset: platebridge.db here).",
    )
    json_flag = argparse.ArgumentParser(add_help=False)
    json_flag.add_argument("--json", action="store_true", help="print one JSON object")
    reg = Registry(
        sub=p.add_subparsers(dest="command", required=True, metavar="COMMAND"), json_flag=json_flag
    )
    for register in COMMAND_MODULES:
        register(reg)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result = args.func(args, settings())
    except (CliError, admin.AdminError) as exc:
        print(f"platebridge-portal: error: {exc}", file=sys.stderr)
        return 1
    except PlateBridgeError as exc:  # the services' refusals (not found, not empty, …)
        print(f"platebridge-portal: error: {exc.message}", file=sys.stderr)
        return 1
    except (SQLAlchemyError, OSError) as exc:
        detail = redact_text(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        print(f"platebridge-portal: database error: {detail[:300]}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    if result is not None:
        if args.json:
            print(json.dumps(result))
        else:
            args.human(args.cmd_name, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
