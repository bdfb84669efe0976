"""Security-test fixtures: a real portal per backend with two fully populated companies."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.security.world import Company, populate, seed
from tests.support.portal import run_portal

#: Pods report loopback addresses nobody listens on: the proxy fails fast (502), never hangs.
WORLD_ENV = {
    "PLATEBRIDGE_POD_NETWORKS": "127.0.0.0/8",
    "PLATEBRIDGE_STREAM_CONNECT_TIMEOUT": "2",
    "PLATEBRIDGE_STREAM_READ_TIMEOUT": "2",
}


@dataclass
class World:
    url: str
    db_url: str
    a: Company
    b: Company


@pytest.fixture(scope="session")
def world(db_url: str) -> Iterator[World]:
    with run_portal(db_url, env=WORLD_ENV) as url:
        a = seed(db_url, "alpha", "127.0.0.66")
        b = seed(db_url, "zulu", "127.0.0.77")
        populate(url, a)
        populate(url, b)
        yield World(url=url, db_url=db_url, a=a, b=b)
