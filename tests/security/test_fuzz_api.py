"""API fuzzing: schemathesis generates requests for every operation of the portal's OpenAPI
document, anonymous and signed in (admin), against a real portal process with data in it.
Whatever it sends: never a 500, every error is JSON ``{"error", "detail"}``.

Examples per operation: ``PB_FUZZ_EXAMPLES`` (default 8 in CI; try 200 locally).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from platebridge.portal.app import create_app
from platebridge.portal.settings import PortalSettings
from tests.security.world import Company, populate, seed
from tests.support.portal import new_sqlite_url, run_portal

pytestmark = pytest.mark.e2e  # a real portal process (tests/conftest.py guards it)

EXAMPLES = int(os.environ.get("PB_FUZZ_EXAMPLES", "8"))
DOCUMENT = create_app(PortalSettings(database_url="sqlite:///unused.db")).openapi()
schema = schemathesis.openapi.from_dict(DOCUMENT)

FUZZ_ENV = {
    "PLATEBRIDGE_POD_NETWORKS": "127.0.0.0/8",
    "PLATEBRIDGE_STREAM_CONNECT_TIMEOUT": "1",
    "PLATEBRIDGE_STREAM_READ_TIMEOUT": "1",
    "PLATEBRIDGE_THROTTLE_LOGIN_PER_IP": "100000",
    "PLATEBRIDGE_THROTTLE_HEARTBEAT_PER_IP": "100000",
}


class Target:
    def __init__(self, url: str, company: Company) -> None:
        self.url = url
        self.company = company


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    db = new_sqlite_url(Path(tmp_path_factory.mktemp("fuzz")))
    with run_portal(db, env=FUZZ_ENV) as url:
        company = seed(db, "fuzz", "127.0.0.99")
        populate(url, company)
        yield Target(url, company)


def test_served_document_is_the_apps_and_needs_a_user(target: Target) -> None:
    assert httpx.get(f"{target.url}/api/openapi.json").status_code == 401
    r = httpx.get(f"{target.url}/api/openapi.json", headers=target.company.viewer_auth)
    assert r.status_code == 200
    assert set(r.json()["paths"]) == set(DOCUMENT["paths"])
    assert httpx.get(f"{target.url}/docs").status_code == 404  # no CDN-backed UI


def check(response: httpx.Response | object, label: str) -> None:
    status = getattr(response, "status_code", 0)
    text = getattr(response, "text", "")
    headers = getattr(response, "headers", {})
    assert status != 500 and status < 600, (label, status, text[:300])
    if status >= 400:
        ctype = headers.get("content-type") or headers.get("Content-Type") or ""
        ctype = ctype[0] if isinstance(ctype, list) else ctype
        assert ctype.startswith("application/json"), (label, text[:200])
        body = response.json()  # type: ignore[attr-defined]
        assert set(body) == {"error", "detail"}, (label, body)


@pytest.mark.parametrize("who", ["anonymous", "admin"])
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_operation_never_fails_badly(case: schemathesis.Case, who: str, target: Target) -> None:
    headers = dict(target.company.admin_auth) if who == "admin" else {}
    if case.headers:
        headers = {**case.headers, **headers}
    response = case.call(base_url=target.url, headers=headers, timeout=15)
    check(response, f"{case.method} {case.formatted_path}")
