"""Run the real portal for tests: databases, the ``platebridge-portal serve`` process (the one
place that starts it), the CLI, seeding.

Reusable by any test package::

    with run_portal(db_url) as base_url:          # migrates, serves, waits for /health
        seeded = seed_company(db_url)             # company, community, site, admin, pod + key
        httpx.post(f"{base_url}/api/pod/heartbeat", headers=seeded.pod_auth, json=...)

``portal_process`` yields a :class:`PortalProc` instead (URL, log, login cache, pid);
``start_portal`` leaves stopping to the caller (a node killed mid-test). The portal app without
a process: ``tests/support/inprocess.py``.

``db_url`` is what users put in ``PLATEBRIDGE_DATABASE_URL`` (``sqlite:///…`` or
``postgresql://…``); the ``db_url`` fixture in ``tests/conftest.py`` provides one per backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from tests.support.procs import VENV_BIN, Proc, free_port, wait_for_http

PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/test"
PG_BASE = "postgresql://postgres@127.0.0.1:5432"
PORTAL = str(VENV_BIN / "platebridge-portal")


# --- databases ---------------------------------------------------------------------------------


def pg_reachable() -> str | None:
    """None when PostgreSQL on 127.0.0.1:5432 answers, else the reason."""

    async def probe() -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=3)
        await conn.close()

    try:
        asyncio.run(probe())
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


async def _pg_admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def create_pg_database(prefix: str = "pb_test") -> str:
    """Create a fresh, uniquely named database; returns its ``postgresql://`` URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    return f"{PG_BASE}/{name}"


def drop_pg_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def new_sqlite_url(directory: Path | None = None) -> str:
    directory = directory or Path(tempfile.mkdtemp(prefix="pb-sqlite-"))
    return f"sqlite:///{directory / f'portal-{uuid.uuid4().hex[:8]}.db'}"


def is_postgres(db_url: str) -> bool:
    return db_url.startswith(("postgresql", "postgres:"))


def migrate(db_url: str) -> None:
    from platebridge.portal.migrate import upgrade
    from platebridge.portal.settings import normalize_database_url

    upgrade(normalize_database_url(db_url))


# --- the portal process ------------------------------------------------------------------------


def portal_env(db_url: str, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a test portal process; alerts off unless ``env`` turns them on
    (see ``inprocess.settings_from_env``)."""
    out = {"PLATEBRIDGE_DATABASE_URL": db_url, "PLATEBRIDGE_ALERTS_ENABLED": "false"}
    if env:
        out.update(env)
    return out


@dataclass
class PortalProc:
    """A running ``platebridge-portal serve``: its URL, database, process and log."""

    url: str
    db_url: str
    proc: Proc
    _logins: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def log_path(self) -> Path:
        return self.proc.log_path

    def output(self) -> str:
        return self.proc.output()

    def login(self, email: str, password: str) -> dict[str, str]:
        """The user's auth header (one login per user: argon2 is deliberately slow)."""
        if email not in self._logins:
            self._logins[email] = login(self.url, email, password)
        return self._logins[email]

    def stop(self) -> int | None:
        """SIGTERM (then SIGKILL), and make sure nothing of its process group survives."""
        code = self.proc.stop()
        self.proc.kill_group()
        return code


def start_portal(
    db_url: str,
    env: Mapping[str, str] | None = None,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    log_dir: Path | None = None,
    log_level: str = "warning",
    extra_args: Sequence[str] = (),
    timeout: float = 30.0,
) -> PortalProc:
    """Start ``platebridge-portal serve`` (settings via ``env``, the database from ``db_url``)
    on ``port`` or a free one, wait for ``/health``; the caller stops it (or use
    :func:`portal_process`). The log goes to ``log_dir/portal.log``."""
    port = port or free_port(host)
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="pb-portal-"))
    argv = [PORTAL, "serve", "--host", host, "--port", str(port), "--log-level", log_level]
    proc = Proc(
        [*argv, *extra_args],
        log_path=log_dir / "portal.log",
        env=portal_env(db_url, env),
        cwd=log_dir,
    )
    portal = PortalProc(url=f"http://{host}:{port}", db_url=db_url, proc=proc)
    try:
        wait_for_http(f"{portal.url}/health", timeout=timeout, proc=proc.popen)
    except (TimeoutError, RuntimeError) as exc:
        portal.stop()
        raise RuntimeError(f"portal did not start: {exc}\n{proc.output()[-3000:]}") from None
    except BaseException:
        portal.stop()
        raise
    return portal


@contextlib.contextmanager
def portal_process(
    db_url: str, env: Mapping[str, str] | None = None, **options: Any
) -> Iterator[PortalProc]:
    """:func:`start_portal` for the ``with`` block; stopped at its end, whatever happens."""
    portal = start_portal(db_url, env, **options)
    try:
        yield portal
    finally:
        portal.stop()


@contextlib.contextmanager
def run_portal(
    db_url: str,
    env: Mapping[str, str] | None = None,
    *,
    host: str = "127.0.0.1",
    log_dir: Path | None = None,
) -> Iterator[str]:
    """:func:`portal_process` when only the base URL matters."""
    with portal_process(db_url, env, host=host, log_dir=log_dir) as portal:
        yield portal.url


def cli(
    db_url: str, *args: str, env: Mapping[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run ``platebridge-portal ARGS`` against ``db_url``."""
    full_env = dict(os.environ)
    full_env.update(portal_env(db_url, env))
    result = subprocess.run(
        [PORTAL, *args], env=full_env, capture_output=True, text=True, timeout=60, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"platebridge-portal {args[:2]} failed: {result.stderr}")
    return result


def cli_json(db_url: str, *args: str, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    out = cli(db_url, *args, "--json", env=env).stdout
    lines = out.strip().splitlines()
    assert len(lines) == 1, f"expected one JSON line, got: {out!r}"
    value: dict[str, Any] = json.loads(lines[0])
    return value


# --- seeding (in-process domain functions: fast) -----------------------------------------------


@dataclass
class SeededCompany:
    company_id: str
    community_id: str
    site_id: str
    site_name: str
    email: str
    password: str
    pod_id: str
    api_key: str
    stream_token_secret: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pod_auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


async def _seed(db_url: str, name: str, pod_id: str, pod_name: str) -> SeededCompany:
    from platebridge.portal.db import Database
    from platebridge.portal.services import admin
    from platebridge.portal.settings import normalize_database_url

    db = Database(normalize_database_url(db_url))
    password = f"pw-{uuid.uuid4().hex[:12]}"
    try:
        async with db.write() as s:
            company = await admin.create_company(s, name)
            community = await admin.create_community(s, str(company.id), "Community")
            site = await admin.create_site(s, str(community.id), "Main Gate")
            email = f"admin-{uuid.uuid4().hex[:8]}@example.test"
            await admin.create_user(s, str(company.id), email, password, "admin")
            created = await admin.create_pod(s, str(site.id), pod_id, pod_name)
            created.pod.stream_mode = "proxy"  # seeded tests assume proxy; new pods are auto
        return SeededCompany(
            company_id=str(company.id),
            community_id=str(community.id),
            site_id=str(site.id),
            site_name=site.name,
            email=email,
            password=password,
            pod_id=pod_id,
            api_key=created.api_key,
            stream_token_secret=created.stream_token_secret,
        )
    finally:
        await db.dispose()


def seed_company(
    db_url: str,
    name: str | None = None,
    *,
    pod_id: str = "main-gate-pod",
    pod_name: str = "Main Gate POD",
) -> SeededCompany:
    """A company with one community, site ("Main Gate"), admin user and pod (with its key).
    The database must be migrated (``run_portal`` or :func:`migrate` does it)."""
    name = name or f"Company {uuid.uuid4().hex[:8]}"
    return asyncio.run(_seed(db_url, name, pod_id, pod_name))


async def _execute(db_url: str, sql: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    from sqlalchemy import text

    from platebridge.portal.db import Database
    from platebridge.portal.settings import normalize_database_url

    db = Database(normalize_database_url(db_url))
    try:
        async with db.write() as s:
            result = await s.execute(text(sql), dict(params))
            return [tuple(r) for r in result.all()] if result.returns_rows else []
    finally:
        await db.dispose()


def sql(db_url: str, statement: str, **params: Any) -> list[tuple[Any, ...]]:
    """Run one SQL statement against the portal database (for inspecting/ageing rows)."""
    return asyncio.run(_execute(db_url, statement, params))


def login(base_url: str, email: str, password: str) -> dict[str, str]:
    """Log in; returns the ``Authorization`` header for the session."""
    r = httpx.post(f"{base_url}/api/auth/login", json={"email": email, "password": password})
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def _age_pods(db_url: str, company_id: str, seconds: float) -> None:
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from platebridge.portal.db import Database
    from platebridge.portal.models import Pod
    from platebridge.portal.settings import normalize_database_url

    db = Database(normalize_database_url(db_url))
    try:
        async with db.write() as s:
            await s.execute(
                update(Pod)
                .where(Pod.company_id == uuid.UUID(company_id))
                .values(last_heartbeat=datetime.now(UTC) - timedelta(seconds=seconds))
            )
    finally:
        await db.dispose()


def age_pods(db_url: str, company_id: str, seconds: float) -> None:
    """Pretend every pod of the company last heartbeated ``seconds`` ago."""
    asyncio.run(_age_pods(db_url, company_id, seconds))


async def in_session(db_url: str, fn: Any) -> Any:
    """``await fn(session)`` in one write transaction on ``db_url`` (seeding with the domain
    functions of ``portal.services``)."""
    from platebridge.portal.db import Database
    from platebridge.portal.settings import normalize_database_url

    db = Database(normalize_database_url(db_url))
    try:
        async with db.write() as s:
            return await fn(s)
    finally:
        await db.dispose()


def enrollment_key(db_url: str, site_id: str) -> str:
    """Issue a site enrollment key (domain function; the CLI test covers the command)."""
    from platebridge.portal.services import admin

    async def fn(s: Any) -> str:
        return (await admin.issue_enrollment_key(s, site_id))[1].api_key

    result: str = asyncio.run(in_session(db_url, fn))
    return result


def rotate_pod_key(db_url: str, company_id: str, pod_id: str) -> str:
    """Revoke the pod's keys and return a new one."""
    from platebridge.portal.services import admin

    async def fn(s: Any) -> str:
        pod = await admin.find_pod(s, pod_id, company_id)
        return (await admin.rotate_pod_key(s, pod)).api_key

    result: str = asyncio.run(in_session(db_url, fn))
    return result


def create_site(db_url: str, community_id: str, name: str) -> str:
    """Create another site in a community; returns its id."""
    from platebridge.portal.services import admin

    async def fn(s: Any) -> str:
        return str((await admin.create_site(s, community_id, name)).id)

    result: str = asyncio.run(in_session(db_url, fn))
    return result
