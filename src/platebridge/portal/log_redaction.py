"""Keep stream tokens and keys out of the portal's logs.

uvicorn's access log writes every request line with its query string, and proxied playlist and
segment requests carry ``?token=…``. :func:`logging_config` is uvicorn's own logging
configuration with :class:`RedactFilter` on its handlers, and a handler for the portal's loggers
with the same filter, so whatever reaches the output has passed ``core.redact.redact_record``.
``cli serve`` also calls ``core.redact.install_log_redaction``, which redacts the records of
every other library's loggers (websockets, httpcore, SQLAlchemy, aiosqlite…) at creation.
"""

from __future__ import annotations

import copy
from typing import Any

from platebridge.core.redact import LogRedactionFilter


class RedactFilter(LogRedactionFilter):
    """The shared ``core.redact`` filter under the name uvicorn's logging config refers to:
    it redacts message, arguments and exception text in place (uvicorn's access formatter still
    reads the request line from ``record.args``)."""


def logging_config(level: str = "info") -> dict[str, Any]:
    """uvicorn's ``LOGGING_CONFIG`` plus the redacting filter and the ``platebridge`` loggers
    (at ``level``; httpx/httpcore at WARNING at least, they log every request URL)."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact"] = {"()": RedactFilter}
    for handler in config["handlers"].values():
        handler.setdefault("filters", []).append("redact")
    loggers = config.setdefault("loggers", {})
    upper = level.upper()
    quiet = upper if upper in ("WARNING", "ERROR", "CRITICAL") else "WARNING"
    for name, lvl in (("platebridge", upper), ("httpx", quiet), ("httpcore", quiet)):
        loggers[name] = {"handlers": ["default"], "level": lvl, "propagate": False}
    return config
