"""Portal test fixtures, per backend for the session: ``portal`` (a real portal process) and
``app_portal`` (the app in-process, for the fast lane). ``tenant`` needs neither."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from tests.support import inprocess
from tests.support.inprocess import AppPortal
from tests.support.portal import SeededCompany, login, run_portal, seed_company


@dataclass
class Portal:
    url: str
    db_url: str
    _logins: dict[str, dict[str, str]] = field(default_factory=dict)

    def company(self, **kwargs: str) -> SeededCompany:
        return seed_company(self.db_url, **kwargs)

    def login(self, seeded: SeededCompany) -> dict[str, str]:
        """The user's auth header (one login per user: argon2 is deliberately slow)."""
        if seeded.email not in self._logins:
            self._logins[seeded.email] = login(self.url, seeded.email, seeded.password)
        return self._logins[seeded.email]


@pytest.fixture(scope="session")
def portal(db_url: str) -> Iterator[Portal]:
    with run_portal(db_url) as url:
        yield Portal(url=url, db_url=db_url)


@pytest.fixture(scope="session")
def app_portal(db_url: str) -> Iterator[AppPortal]:
    with inprocess.app_portal(db_url) as app:
        yield app


@pytest.fixture
def tenant(db_url: str) -> SeededCompany:
    """A fresh company (own site, admin, pod ``main-gate-pod`` and its key) for one test."""
    return seed_company(db_url)


@pytest.fixture(scope="module")
def pristine_tenant(db_url: str) -> SeededCompany:
    """A company shared by a module's tests that must all leave it untouched."""
    return seed_company(db_url)
