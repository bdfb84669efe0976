"""`PLATEBRIDGE_ENVIRONMENT=production` refuses development defaults, naming each one."""

from __future__ import annotations

import pytest

from platebridge.portal import cli
from platebridge.portal.settings import PortalSettings

GOOD = {
    "environment": "production",
    "database_url": "postgresql://platebridge@127.0.0.1:5432/platebridge",
    "secret_key": "k" * 48,
    "cookie_secure": True,
    "migrate_on_start": False,
    "redis_url": "redis://127.0.0.1:6379/0",
    "node_url": "http://127.0.0.1:8081",
    "trusted_proxies": "127.0.0.1",
}


def test_production_with_every_setting_made_is_accepted() -> None:
    assert PortalSettings(**GOOD).production_problems() == []  # type: ignore[arg-type]


def test_development_never_complains() -> None:
    assert PortalSettings(database_url="sqlite:///x.db").production_problems() == []


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"database_url": "sqlite:///portal.db"}, "PLATEBRIDGE_DATABASE_URL"),
        ({"secret_key": None}, "PLATEBRIDGE_SECRET_KEY"),
        ({"secret_key": "short"}, "PLATEBRIDGE_SECRET_KEY"),
        ({"cookie_secure": False}, "PLATEBRIDGE_COOKIE_SECURE"),
        ({"migrate_on_start": True}, "PLATEBRIDGE_MIGRATE_ON_START"),
        ({"redis_url": None}, "PLATEBRIDGE_REDIS_URL"),
    ],
)
def test_each_development_default_is_named(override: dict[str, object], named: str) -> None:
    problems = PortalSettings(**{**GOOD, **override}).production_problems()  # type: ignore[arg-type]
    assert len(problems) == 1 and problems[0].startswith(named), problems


def test_serve_refuses_to_start(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PLATEBRIDGE_ENVIRONMENT", "production")
    monkeypatch.setenv("PLATEBRIDGE_DATABASE_URL", "sqlite:///never-created.db")
    monkeypatch.setenv("PLATEBRIDGE_SECRET_KEY", "short-Secret-VALUE")
    assert cli.main(["serve", "--port", "1"]) == 1
    err = capsys.readouterr().err
    assert "refusing to start in production" in err
    for name in ("DATABASE_URL", "SECRET_KEY", "COOKIE_SECURE", "MIGRATE_ON_START"):
        assert f"PLATEBRIDGE_{name}" in err
    assert "short-Secret-VALUE" not in err  # the key itself is never echoed


@pytest.mark.parametrize("bad", ["nginx.local", "127.0.0.1;rm", "10.0.0.0/33"])
def test_trusted_proxies_must_be_addresses(bad: str) -> None:
    with pytest.raises(ValueError):
        PortalSettings(trusted_proxies=bad)


def test_serve_freezes_the_startup_heap_before_serving(monkeypatch: pytest.MonkeyPatch) -> None:
    """The objects of startup are out of the collector's walk before the first request
    (``serve.freeze_startup_heap``: a full collection over them stalled the loop 90-140 ms)."""
    import gc

    import uvicorn

    frozen_at_run: list[int] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: frozen_at_run.append(gc.get_freeze_count()))
    monkeypatch.setenv("PLATEBRIDGE_DATABASE_URL", "sqlite:///never-created.db")
    monkeypatch.setenv("PLATEBRIDGE_MIGRATE_ON_START", "false")
    gc.unfreeze()
    try:
        assert cli.main(["serve", "--port", "1"]) == 0
    finally:
        gc.unfreeze()  # this test process keeps collecting as before
    assert len(frozen_at_run) == 1 and frozen_at_run[0] > 10_000, frozen_at_run
