"""Top-level fixtures: the database backends every portal test runs against.

``db_url`` is parametrised over SQLite (a temp file) and PostgreSQL (a fresh database on
127.0.0.1:5432, created for the session and dropped at the end). Without a reachable
PostgreSQL the PostgreSQL half is skipped with a loud warning — or fails when ``CI=true``.
"""

from __future__ import annotations

import os
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.portal import (
    create_pg_database,
    drop_pg_database,
    migrate,
    new_sqlite_url,
    pg_reachable,
)

_pg_problem: list[str | None] = []


def require_postgres() -> None:
    """Skip (or fail on CI) when PostgreSQL is not reachable."""
    if not _pg_problem:
        _pg_problem.append(pg_reachable())
    problem = _pg_problem[0]
    if problem is None:
        return
    message = f"PostgreSQL on 127.0.0.1:5432 is unreachable ({problem})"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message}: CI must run the PostgreSQL tests", pytrace=False)
    warnings.warn(f"!!! SKIPPING POSTGRESQL TESTS: {message}", stacklevel=1)
    pytest.skip(f"!!! {message}")


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A migrated, empty portal database for the whole session, per backend."""
    if request.param == "sqlite":
        url = new_sqlite_url(Path(tmp_path_factory.mktemp("sqlite")))
        migrate(url)
        yield url
        return
    require_postgres()
    url = create_pg_database()
    try:
        migrate(url)
        yield url
    finally:
        drop_pg_database(url)


# --- markers: `e2e` means "starts real processes" ---------------------------------------------
#
# The fast lane is `pytest -m "not e2e"`. A test that starts a process (directly or through one of
# its fixtures) without the e2e marker fails there with a message saying so, so the marker stays
# true by construction: the guard wraps subprocess.Popen, which asyncio's subprocesses use too.

_SPAWN_GUARD = {"active": False}
_original_popen_init = subprocess.Popen.__init__


def _guarded_popen_init(self: subprocess.Popen[Any], *args: Any, **kwargs: Any) -> None:
    if _SPAWN_GUARD["active"]:
        argv = args[0] if args else kwargs.get("args")
        name = Path(str(argv[0] if isinstance(argv, list | tuple) else argv)).name
        raise RuntimeError(
            f"this test starts a process ({name}) but is not marked e2e: add "
            "pytestmark = pytest.mark.e2e to its module (or @pytest.mark.e2e)"
        )
    _original_popen_init(self, *args, **kwargs)


def _fast_lane(config: pytest.Config) -> bool:
    expr = str(config.getoption("markexpr", "") or "")
    return "not e2e" in " ".join(expr.split())


#: Directories whose every test starts processes (browser, demo, soak, benchmarks, faults).
_E2E_DIRS = ("web", "demo", "soak", "bench", "faults")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    root = Path(__file__).parent
    for item in items:
        parts = item.path.relative_to(root).parts if item.path.is_relative_to(root) else ()
        if parts and parts[0] in _E2E_DIRS:
            item.add_marker(pytest.mark.e2e)


def pytest_configure(config: pytest.Config) -> None:
    if _fast_lane(config):
        subprocess.Popen.__init__ = _guarded_popen_init  # type: ignore[method-assign]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    _SPAWN_GUARD["active"] = _fast_lane(item.config) and item.get_closest_marker("e2e") is None
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    yield
    _SPAWN_GUARD["active"] = False


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """In CI (``CI=true``) a skipped test is a failed one: every suite runs there, so a skip
    means a missing tool or service that CI must have (the reason is kept in the report)."""
    outcome: Any = yield
    report = outcome.get_result()
    in_ci = os.environ.get("CI", "").lower() == "true"
    if report.skipped and in_ci and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, which must run every test: {report.longrepr}"
