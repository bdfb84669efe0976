from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from platebridge.pod.backoff import Backoff, full_jitter


def test_restart_backoff_grows_caps_and_resets() -> None:
    b = Backoff(1, 2, 30)
    assert [b.next() for _ in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    b.reset()
    assert b.next() == 1


def test_backoff_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        Backoff(0, 2, 30)
    with pytest.raises(ValueError):
        Backoff(5, 2, 1)


@given(st.integers(min_value=0, max_value=10_000), st.floats(min_value=1, max_value=3600))
def test_full_jitter_within_bounds(attempt: int, cap: float) -> None:
    delay = full_jitter(attempt, 1.0, cap)
    assert 0 <= delay <= min(cap, 2.0 ** min(attempt, 32))


def test_full_jitter_ceiling_grows_then_caps() -> None:
    upper = lambda lo, hi: hi  # noqa: E731 - picks the ceiling deterministically
    assert [full_jitter(n, 1.0, 10, upper) for n in range(6)] == [1, 2, 4, 8, 10, 10]
