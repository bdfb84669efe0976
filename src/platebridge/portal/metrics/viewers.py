"""HLS players have no connection to count: a player is active while it keeps fetching its
playlist (every few seconds), so one seen within :data:`WINDOW` seconds is a viewer."""

from __future__ import annotations

import time
from collections import OrderedDict

from platebridge.portal.metrics import instruments as m

#: Seconds since its last playlist fetch that a player still counts (audit's viewing window).
WINDOW = 60.0
#: Players remembered per process at most (the oldest are forgotten first).
MAX_PLAYERS = 20_000


class HlsViewers:
    """The players of this process (key → method, last fetch); the gauge follows each change."""

    def __init__(self, window: float = WINDOW, max_players: int = MAX_PLAYERS) -> None:
        self.window = window
        self.max_players = max_players
        self._seen: OrderedDict[tuple[str, ...], tuple[str, float]] = OrderedDict()
        self._counts: dict[str, int] = {}

    def seen(self, key: tuple[str, ...], method: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        old = self._seen.pop(key, None)
        if old is not None:
            self._counts[old[0]] -= 1
        self._seen[key] = (method, now)
        self._counts[method] = self._counts.get(method, 0) + 1
        self.refresh(now)

    def refresh(self, now: float | None = None) -> None:
        """Forget players silent for longer than the window; set the gauge (also per scrape)."""
        now = time.monotonic() if now is None else now
        while self._seen:
            key, (method, at) = next(iter(self._seen.items()))
            if now - at <= self.window and len(self._seen) <= self.max_players:
                break
            del self._seen[key]
            self._counts[method] -= 1
        for method, count in self._counts.items():
            m.ACTIVE_VIEWERS.labels(method, "hls").set(count)


HLS_VIEWERS = HlsViewers()
