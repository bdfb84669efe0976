"""Brute force: failed logins and failed heartbeat keys are throttled per source (429 JSON +
Retry-After), the legitimate user is never locked out for good, memory stays bounded."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from platebridge.portal.throttle import SlidingWindow, Throttle, ThrottleLimits
from tests.support.portal import new_sqlite_url, run_portal, seed_company

pytestmark = pytest.mark.e2e  # a real portal process (tests/conftest.py guards it)

# --- the counters, with a fake clock (deterministic) -------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_sliding_window_counts_expires_and_reports_retry_after() -> None:
    clock = FakeClock()
    w = SlidingWindow(3, 60, clock=clock)
    for _ in range(2):
        w.add("a")
        clock.now += 10
    assert w.retry_after("a") is None  # 2 < 3
    w.add("a")  # t = 1020; hits at 1000, 1010, 1020
    assert w.retry_after("a") == pytest.approx(40)  # the hit at 1000 leaves at 1060
    clock.now = 1060.5
    assert w.retry_after("a") is None and w.count("a") == 2  # sliding, not a fixed bucket
    clock.now = 2000
    assert w.count("a") == 0 and len(w) == 0  # fully expired keys disappear


def test_memory_is_bounded_per_key_and_in_keys() -> None:
    clock = FakeClock()
    w = SlidingWindow(5, 60, max_keys=100, clock=clock)
    for _ in range(10_000):
        w.add("hot")
    assert w.count("hot") == 5
    for i in range(5_000):
        w.add(f"10.0.{i // 250}.{i % 250}")
    assert len(w) <= 100


def test_account_throttle_spares_clean_sources() -> None:
    clock = FakeClock()
    t = Throttle(ThrottleLimits(login_per_ip=100, login_per_account=4, login_window=60), clock)
    for i in range(4):
        t.check_login("victim@example.test", f"203.0.113.{i}")
        t.login_failed("victim@example.test", f"203.0.113.{i}")
    with pytest.raises(Exception) as caught:  # a source that failed on the hot account waits
        t.check_login("victim@example.test", "203.0.113.0")
    assert getattr(caught.value, "status", None) == 429
    t.check_login("victim@example.test", "198.51.100.7")  # the real user elsewhere: allowed
    t.check_login("other@example.test", "203.0.113.0")  # other accounts: not affected
    clock.now += 61
    t.check_login("victim@example.test", "203.0.113.0")  # the window expired


# --- against the real portal process -----------------------------------------------------------

LIMITS = {
    "PLATEBRIDGE_THROTTLE_LOGIN_PER_IP": "3",
    "PLATEBRIDGE_THROTTLE_LOGIN_PER_ACCOUNT": "4",
    "PLATEBRIDGE_THROTTLE_LOGIN_WINDOW": "4",
    "PLATEBRIDGE_THROTTLE_HEARTBEAT_PER_IP": "3",
    "PLATEBRIDGE_THROTTLE_HEARTBEAT_WINDOW": "4",
}


@pytest.fixture(scope="module")
def throttled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(portal URL, database URL) of a portal with tiny limits and 4 s windows."""
    db = new_sqlite_url(Path(tmp_path_factory.mktemp("throttle")))
    with run_portal(db, env=LIMITS) as url:
        yield url, db


def client_from(source: str) -> httpx.Client:
    """A client whose connections come from ``source`` (any 127.0.0.0/8 address)."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=10)


def login(c: httpx.Client, url: str, email: str, password: str) -> httpx.Response:
    return c.post(f"{url}/api/auth/login", json={"email": email, "password": password})


def assert_429(r: httpx.Response) -> int:
    assert r.status_code == 429, r.text
    assert r.json()["error"] == "too_many_requests"
    retry = int(r.headers["retry-after"])
    assert 1 <= retry <= 5
    return retry


def test_failed_logins_per_source_then_recovery(throttled: tuple[str, str]) -> None:
    url, db = throttled
    co = seed_company(db)
    with client_from("127.0.0.11") as attacker, client_from("127.0.0.12") as user:
        for _ in range(3):
            assert login(attacker, url, co.email, "wrong-password").status_code == 401
        # Throttled now, even with the right password (the attacker cannot test guesses).
        r = login(attacker, url, co.email, co.password)
        retry = assert_429(r)
        assert co.password not in r.text
        # Another account from the same address: the address is throttled.
        assert_429(login(attacker, url, "someone@example.test", "x-password"))
        # The legitimate user from another source still signs in.
        assert login(user, url, co.email, co.password).status_code == 200
        # The window slides by: the throttled address gets in again by itself.
        deadline = time.monotonic() + retry + 10
        while (r := login(attacker, url, co.email, co.password)).status_code == 429:
            assert time.monotonic() < deadline, "throttle never expired"
            time.sleep(0.5)
        assert r.status_code == 200


def test_distributed_guessing_on_one_account(throttled: tuple[str, str]) -> None:
    url, db = throttled
    co = seed_company(db)
    sources = [f"127.0.1.{i}" for i in range(1, 5)]
    for src in sources:  # 4 addresses, one failure each: the account is now "hot"
        with client_from(src) as c:
            assert login(c, url, co.email, "wrong-password").status_code == 401
    with client_from(sources[0]) as c:
        assert_429(login(c, url, co.email, co.password))  # this address failed on it
    with client_from("127.0.1.200") as c:
        assert login(c, url, co.email, co.password).status_code == 200  # a clean address


def test_failed_heartbeat_keys_per_source(throttled: tuple[str, str]) -> None:
    url, db = throttled
    co = seed_company(db)
    hb = f"{url}/api/pod/heartbeat"
    body = {"pod_id": co.pod_id, "ip_address": "10.0.0.5", "cameras": []}
    with client_from("127.0.2.1") as scanner, client_from("127.0.2.2") as pod:
        for i in range(3):
            bad = {"Authorization": f"Bearer pbk_guess{i:040d}"}
            assert scanner.post(hb, headers=bad, json=body).status_code == 401
        r = scanner.post(hb, headers=co.pod_auth, json=body)  # a real key: still refused
        retry = assert_429(r)
        assert co.api_key not in r.text
        assert pod.post(hb, headers=co.pod_auth, json=body).status_code == 200
        # Missing keys and valid keys are not failures; the pod's address is unaffected.
        for _ in range(5):
            assert pod.post(hb, headers=co.pod_auth, json=body).status_code == 200
        deadline = time.monotonic() + retry + 10
        while (r := scanner.post(hb, headers=co.pod_auth, json=body)).status_code == 429:
            assert time.monotonic() < deadline, "heartbeat throttle never expired"
            time.sleep(0.5)
        assert r.status_code == 200
