"""Brute-force throttling: failed logins and failed heartbeat keys, in process memory.

Sliding-window counters of *failures* (a success never counts):

* **login, per source IP** — more than ``login_per_ip`` failures within ``login_window`` seconds
  from one address → that address gets 429 for every login until the oldest failure leaves
  the window.
* **login, per account** — once an account has ``login_per_account`` failures within the window
  (from anywhere), every source that itself failed on that account in the window gets 429 for
  it. A source with a clean record (the real user on their phone) can still sign in, so an
  attacker cannot lock the legitimate user out; a distributed attacker gets one guess per
  address per window.
* **malformed sign-ins** (a body that is not a login: pathological JSON, a field error) count
  as failures of the source (per IP only: they name no account) and are checked the same way
  before the body is read.
* **heartbeat, per source IP** — more than ``heartbeat_per_ip`` refused API keys within
  ``heartbeat_window`` → 429 for every heartbeat from that address (checked *before* the key,
  so a throttled address learns nothing about any key). Refused keys on the tunnel endpoint
  (``WS /api/pod/tunnel``) count in the same window and are refused the same way before the
  upgrade: a key guesser cannot double the budget by alternating the two endpoints. A
  malformed body sent with a key-shaped but unknown key is answered ``invalid_api_key`` and
  counts the same.

Every 429 carries ``Retry-After`` (whole seconds until the oldest counted failure expires).
Memory is bounded: each key keeps at most ``limit`` timestamps and a limiter keeps at most
``max_keys`` keys (expired keys are dropped first, then the least recently used). State is
per process: with N workers an address gets up to N times the limit; see docs/security.md.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from platebridge.portal.errors import ApiError
from platebridge.portal.settings import PortalSettings

Clock = Callable[[], float]


class SlidingWindow:
    """Per-key failure timestamps within ``window`` seconds, at most ``limit`` kept per key."""

    def __init__(
        self, limit: int, window: float, *, max_keys: int = 100_000, clock: Clock = time.monotonic
    ) -> None:
        if limit < 1 or window <= 0 or max_keys < 1:
            raise ValueError("limit, window and max_keys must be positive")
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._clock = clock
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._hits)

    def _live(self, key: str, now: float) -> deque[float] | None:
        hits = self._hits.get(key)
        if hits is None:
            return None
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if not hits:
            del self._hits[key]
            return None
        return hits

    def count(self, key: str) -> int:
        hits = self._live(key, self._clock())
        return len(hits) if hits else 0

    def retry_after(self, key: str) -> float | None:
        """Seconds until ``key`` is below its limit again, or None when it is not at it."""
        now = self._clock()
        hits = self._live(key, now)
        if hits is None or len(hits) < self.limit:
            return None
        return max(hits[0] + self.window - now, 0.001)

    def add(self, key: str) -> None:
        now = self._clock()
        hits = self._live(key, now)
        if hits is None:
            if len(self._hits) >= self.max_keys:
                self._evict(now)
            hits = self._hits[key] = deque(maxlen=self.limit)
        else:
            self._hits.move_to_end(key)
        hits.append(now)

    def reset(self, key: str) -> None:
        self._hits.pop(key, None)

    def _evict(self, now: float) -> None:
        for key in [k for k, v in self._hits.items() if not v or v[-1] <= now - self.window]:
            del self._hits[key]
        while len(self._hits) >= self.max_keys:
            self._hits.popitem(last=False)


@dataclass(frozen=True, slots=True)
class ThrottleLimits:
    login_per_ip: int = 20
    login_per_account: int = 10
    login_window: float = 300.0
    heartbeat_per_ip: int = 30
    heartbeat_window: float = 60.0
    max_keys: int = 100_000


def too_many(retry_after: float, what: str) -> ApiError:
    seconds = max(1, math.ceil(retry_after))
    return ApiError(
        429,
        "too_many_requests",
        f"too many failed {what}; retry in {seconds} s",
        headers={"Retry-After": str(seconds)},
    )


class Throttle:
    """The portal's failure counters (one per app, in ``app.state.throttle``)."""

    def __init__(self, limits: ThrottleLimits | None = None, clock: Clock = time.monotonic):
        self.limits = limits = limits or ThrottleLimits()
        keys = limits.max_keys
        self.login_ip = SlidingWindow(
            limits.login_per_ip, limits.login_window, max_keys=keys, clock=clock
        )
        self.login_account = SlidingWindow(
            limits.login_per_account, limits.login_window, max_keys=keys, clock=clock
        )
        # (account, source) pairs that failed: limit 1 → "this source failed on this account".
        self.login_pair = SlidingWindow(1, limits.login_window, max_keys=keys, clock=clock)
        self.heartbeat_ip = SlidingWindow(
            limits.heartbeat_per_ip, limits.heartbeat_window, max_keys=keys, clock=clock
        )

    @staticmethod
    def _pair(account: str, source: str) -> str:
        return f"{account}\0{source}"

    # --- login ---------------------------------------------------------------------------

    def check_login(self, account: str, source: str | None) -> None:
        """Raise 429 if this source, or this source on this hot account, must wait."""
        src = source or "unknown"
        wait = self.login_ip.retry_after(src)
        if wait is None and self.login_account.retry_after(account) is not None:
            wait = self.login_pair.retry_after(self._pair(account, src))
        if wait is not None:
            raise too_many(wait, "sign-ins")

    def login_failed(self, account: str, source: str | None) -> None:
        src = source or "unknown"
        self.login_ip.add(src)
        self.login_account.add(account)
        self.login_pair.add(self._pair(account, src))

    def check_login_source(self, source: str | None) -> None:
        """Raise 429 if this source must wait (before its body is read: no account yet)."""
        wait = self.login_ip.retry_after(source or "unknown")
        if wait is not None:
            raise too_many(wait, "sign-ins")

    def login_refused(self, source: str | None) -> None:
        """A sign-in refused before any account was named (a malformed body)."""
        self.login_ip.add(source or "unknown")

    def login_succeeded(self, account: str, source: str | None) -> None:
        # The per-IP and per-account counts stay: an attacker could otherwise clear them by
        # signing in to an account of their own between guesses.
        self.login_pair.reset(self._pair(account, source or "unknown"))

    # --- heartbeat -----------------------------------------------------------------------

    def check_heartbeat(self, source: str | None) -> None:
        wait = self.heartbeat_ip.retry_after(source or "unknown")
        if wait is not None:
            raise too_many(wait, "API keys")

    def heartbeat_failed(self, source: str | None) -> None:
        self.heartbeat_ip.add(source or "unknown")


def limits_from_settings(settings: PortalSettings) -> ThrottleLimits:
    return ThrottleLimits(
        login_per_ip=settings.throttle_login_per_ip,
        login_per_account=settings.throttle_login_per_account,
        login_window=settings.throttle_login_window,
        heartbeat_per_ip=settings.throttle_heartbeat_per_ip,
        heartbeat_window=settings.throttle_heartbeat_window,
    )


def get_throttle(request: Request) -> Throttle:
    """The app's throttle (created on first use from the app's settings)."""
    return app_throttle(request.app)


def app_throttle(app: Any) -> Throttle:
    """The throttle of ``app`` (also for WebSocket routes, which have no ``Request``)."""
    state = app.state
    throttle: Throttle | None = getattr(state, "throttle", None)
    if throttle is None:
        throttle = state.throttle = Throttle(limits_from_settings(state.settings))
    return throttle
