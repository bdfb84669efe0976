"""The last lines of a child's stderr, with credentials masked before they are stored."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from platebridge.core.redact import redact_text

MAX_LINE = 400


class StderrTail:
    def __init__(self, secrets: Iterable[str] = (), size: int = 20) -> None:
        self._secrets = [s for s in secrets if s]
        self._lines: deque[str] = deque(maxlen=size)

    def add(self, raw: bytes | str) -> str:
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        line = redact_text(text.rstrip(), self._secrets)[:MAX_LINE]
        if line:
            self._lines.append(line)
        return line

    def lines(self) -> list[str]:
        return list(self._lines)

    def last(self) -> str | None:
        return self._lines[-1] if self._lines else None

    def clear(self) -> None:
        self._lines.clear()
