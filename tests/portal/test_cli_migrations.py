"""The admin CLI (``--json``: one object; errors: one line, non-zero) and the migrations."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection

from platebridge.portal.db import make_engine
from platebridge.portal.schema import metadata
from platebridge.portal.settings import normalize_database_url
from tests.conftest import require_postgres
from tests.portal.conftest import Portal
from tests.support.portal import (
    cli,
    cli_json,
    create_pg_database,
    drop_pg_database,
    is_postgres,
    login,
    new_sqlite_url,
    run_portal,
)

pytestmark = pytest.mark.e2e  # a real portal process (tests/conftest.py guards it)


@pytest.fixture
def fresh_db(db_url: str) -> Iterator[str]:
    """An empty, unmigrated database of the same backend as ``db_url``."""
    if is_postgres(db_url):
        require_postgres()
        url = create_pg_database("pb_fresh")
        try:
            yield url
        finally:
            drop_pg_database(url)
    else:
        yield new_sqlite_url()


def _schema_diff(db_url: str) -> list[object]:
    def compare(conn: Connection) -> list[object]:
        return list(compare_metadata(MigrationContext.configure(conn), metadata))

    async def run() -> list[object]:
        engine = make_engine(normalize_database_url(db_url))
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(compare)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_migrate_matches_models_and_is_idempotent(fresh_db: str) -> None:
    out = cli_json(fresh_db, "migrate")
    assert out["ok"] is True
    assert "@" not in out["database"] or "***" in out["database"]
    assert _schema_diff(fresh_db) == []
    assert cli_json(fresh_db, "migrate")["ok"] is True


def test_admin_commands_json(fresh_db: str) -> None:
    company = cli_json(fresh_db, "company", "create", "--name", "Acme Gates")
    community = cli_json(
        fresh_db, "community", "create", "--company", company["company_id"], "--name", "North"
    )
    # Parents by unique name work too.
    site = cli_json(fresh_db, "site", "create", "--community", "North", "--name", "Main Gate")
    assert site["company_id"] == company["company_id"]
    assert site["community_id"] == community["community_id"]
    user = cli_json(
        fresh_db, "user", "create", "--company", "Acme Gates", "--email", "Ops@Acme.test",
        "--password", "correct-horse", "--role", "viewer",
    )  # fmt: skip
    assert (user["email"], user["role"]) == ("ops@acme.test", "viewer")
    pod = cli_json(
        fresh_db, "pod", "create", "--site", site["site_id"], "--pod-id", "main-gate-pod",
        "--name", "Main Gate POD", "--portal-url", "https://portal.example",
    )  # fmt: skip
    assert pod["pod_id"] == "main-gate-pod" and pod["api_key"].startswith("pbk_")
    assert len(pod["api_key"]) >= 4 + 43
    config = yaml.safe_load(pod["config_yaml"])
    assert config["pod_id"] == "main-gate-pod"
    assert config["portal_url"] == "https://portal.example"
    assert config["api_key"] == pod["api_key"]
    assert config["stream_token_secret"] == pod["stream_token_secret"]
    assert config["cameras"][0]["camera_id"]

    rotated = cli_json(fresh_db, "pod", "rotate-key", "--pod-id", "main-gate-pod")
    assert rotated["api_key"] != pod["api_key"]
    enroll = cli_json(fresh_db, "site", "enrollment-key", "--site", "Main Gate")
    assert enroll["site_id"] == site["site_id"] and enroll["api_key"].startswith("pbk_")

    # Keys are stored hashed: the printed key is nowhere in the database file (SQLite).
    if not is_postgres(fresh_db):
        raw = fresh_db.removeprefix("sqlite:///")
        data = Path(raw).read_bytes()
        assert pod["api_key"].encode() not in data
        assert b"correct-horse" not in data


ERRORS = [
    (("community", "create", "--company", "Nope", "--name", "X"), "company 'Nope' not found"),
    (("site", "create", "--community", "Nope", "--name", "X"), "community 'Nope' not found"),
    (("pod", "rotate-key", "--pod-id", "ghost"), "pod 'ghost' not found"),
    (("company", "create", "--name", "Dup"), "already exists"),
    (
        ("user", "create", "--company", "Dup", "--email", "x@y.z", "--password", "short",
         "--role", "admin"),
        "password must be at least",
    ),
]  # fmt: skip


def test_errors_are_one_line_nonzero(fresh_db: str) -> None:
    cli(fresh_db, "company", "create", "--name", "Dup")
    for args, message in ERRORS:
        result = cli(fresh_db, *args, "--json", check=False)
        assert result.returncode == 1, args
        assert result.stdout == ""
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], result.stderr
        assert "short" not in lines[0]


def test_serve_migrates_by_itself(fresh_db: str) -> None:
    import httpx

    with run_portal(fresh_db) as url:
        assert httpx.get(f"{url}/health").json()["status"] == "ok"
    assert _schema_diff(fresh_db) == []


def test_demo_seed_hands_back_working_credentials(portal: Portal) -> None:
    import httpx

    demo = cli_json(portal.db_url, "demo-seed", "--portal-url", portal.url)
    r = httpx.post(
        f"{portal.url}/api/pod/heartbeat",
        headers={"Authorization": f"Bearer {demo['api_key']}"},
        json={"pod_id": demo["pod_id"], "ip_address": "192.168.1.100", "cameras": []},
    )
    assert r.status_code == 200, r.text
    token = login(portal.url, demo["email"], demo["password"])
    pods = httpx.get(f"{portal.url}/api/pods", headers=token).json()["pods"]
    assert [(p["pod_id"], p["status"]) for p in pods] == [(demo["pod_id"], "online")]
    assert demo["pod_config"]["api_key"] == demo["api_key"]
