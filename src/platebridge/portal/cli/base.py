"""Shared pieces of the CLI: settings, running a database action, time flags, registration.

Each command module (``serve``, ``tenancy``, ``users``, ``pods``, ``audit``) has one function
``register(reg: Registry) -> None`` that adds its commands through :class:`Registry`; the package's
``__init__`` lists the modules in help order. A command is ``func(args, settings) -> dict | None``;
``--json`` prints the dict as one JSON object, otherwise ``human(cmd_name, result)`` (default
:func:`print_fields`) prints it.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from platebridge.portal import migrate as migrations
from platebridge.portal.db import Database
from platebridge.portal.settings import PortalSettings

DEFAULT_PORT = 8080

Result = dict[str, Any]
Command = Callable[[argparse.Namespace, PortalSettings], Result | None]
HumanPrinter = Callable[[str, Result], None]
if TYPE_CHECKING:
    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]
else:
    SubParsers = argparse._SubParsersAction


class CliError(Exception):
    """A one-line failure message for the user."""


def settings() -> PortalSettings:
    try:
        return PortalSettings()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(str(p) for p in first["loc"]) or "settings"
        raise CliError(f"invalid setting PLATEBRIDGE_{name.upper()}: {first['msg']}") from None


def migrate(settings: PortalSettings) -> None:
    migrations.upgrade(settings.database_url)


def run_admin(
    settings: PortalSettings, action: Callable[[AsyncSession], Awaitable[Result]]
) -> Result:
    """Run ``action`` in one write transaction (migrating first when the settings say so)."""
    if settings.migrate_on_start:
        migrate(settings)

    async def run() -> Result:
        db = Database(settings.database_url)
        try:
            async with db.write() as session:
                return await action(session)
        finally:
            await db.dispose()

    return asyncio.run(run())


def cli_time(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise CliError(f"--{name} is not an ISO 8601 time: {value[:40]!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def print_fields(command: str, result: Result) -> None:
    """``key: value`` lines; a list of objects as one indented ``k=v, …`` line per item."""
    for key, value in result.items():
        if isinstance(value, list):
            print(f"{key}: {len(value)}")
            for item in value:
                fields = item.items() if isinstance(item, dict) else [("", item)]
                print("  - " + ", ".join(f"{k}={v}" if k else str(v) for k, v in fields))
        else:
            print(f"{key}: {value}")


@dataclass
class Registry:
    """What a command module needs to add its commands to the parser."""

    sub: SubParsers
    json_flag: argparse.ArgumentParser
    groups: dict[str, SubParsers] = field(default_factory=dict)

    def group(self, name: str, help_text: str) -> SubParsers:
        """The ``ACTION`` sub-parsers of object group ``name`` (created on first use)."""
        if name not in self.groups:
            gp = self.sub.add_parser(name, help=help_text)
            self.groups[name] = gp.add_subparsers(dest="action", required=True, metavar="ACTION")
        return self.groups[name]

    def command(
        self,
        func: Command,
        name: str,
        *,
        group: str | None = None,
        help_text: str | None = None,
        human: HumanPrinter | None = None,
    ) -> argparse.ArgumentParser:
        """Add ``[group] name`` with ``--json``; returns the parser for the command's flags."""
        target = self.sub if group is None else self.group(group, group)
        kwargs: dict[str, Any] = {"parents": [self.json_flag]}
        if help_text is not None:
            kwargs["help"] = help_text
        sp = target.add_parser(name, **kwargs)
        cmd_name = name if group is None else f"{group} {name}"
        sp.set_defaults(func=func, cmd_name=cmd_name, human=human or print_fields)
        return sp
