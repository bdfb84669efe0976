"""Retry delays: a growing restart back-off for ffmpeg and full-jitter back-off for heartbeats."""

from __future__ import annotations

import random
from collections.abc import Callable


class Backoff:
    """``initial, initial*factor, …`` capped at ``maximum``; :meth:`reset` after healthy uptime."""

    def __init__(self, initial: float = 1.0, factor: float = 2.0, maximum: float = 30.0) -> None:
        if initial <= 0 or factor < 1 or maximum < initial:
            raise ValueError("need 0 < initial <= maximum and factor >= 1")
        self.initial = initial
        self.factor = factor
        self.maximum = maximum
        self.attempt = 0

    def peek(self) -> float:
        return float(min(self.maximum, self.initial * self.factor**self.attempt))

    def next(self) -> float:
        delay = self.peek()
        self.attempt += 1
        return delay

    def reset(self) -> None:
        self.attempt = 0


def full_jitter(
    attempt: int,
    base: float,
    cap: float,
    rand: Callable[[float, float], float] = random.uniform,
) -> float:
    """AWS-style "full jitter": uniform in ``[0, min(cap, base * 2**attempt)]``."""
    ceiling = min(cap, base * 2 ** min(attempt, 32))
    return rand(0.0, ceiling)
