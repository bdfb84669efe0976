"""Portal test fixtures: one real portal process per backend for the session."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

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


@pytest.fixture
def tenant(portal: Portal) -> SeededCompany:
    """A fresh company (own site, admin, pod ``main-gate-pod`` and its key) for one test."""
    return portal.company()


@pytest.fixture(scope="module")
def pristine_tenant(portal: Portal) -> SeededCompany:
    """A company shared by a module's tests that must all leave it untouched."""
    return portal.company()
