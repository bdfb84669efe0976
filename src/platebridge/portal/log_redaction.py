"""Keep stream tokens and keys out of the portal's logs.

uvicorn's access log writes every request line with its query string, and proxied playlist and
segment requests carry ``?token=…``. :func:`logging_config` is uvicorn's own logging
configuration with :class:`RedactFilter` on its handlers, and a handler for the portal's loggers
with the same filter, so whatever reaches the output has passed ``core.redact.redact_text``.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from platebridge.core.redact import redact_text


def _redact_arg(value: object) -> object:
    return redact_text(value) if isinstance(value, str) else value


class RedactFilter(logging.Filter):
    """Redact a record's message, arguments and exception text in place (formatters still work:
    uvicorn's access formatter reads the request line from ``record.args``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_text(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redact_arg(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _redact_arg(v) for k, v in record.args.items()}
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        return True


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
