"""Keep credentials out of logs, error texts and responses."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

REDACTED = "***"

# scheme://user:password@host  or  scheme://user@host
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")
# query parameters that carry secrets (``token=...``, ``api_key=...``)
_SECRET_PARAMS = re.compile(
    r"(?P<key>\b(?:token|api_key|apikey|password|passwd|secret|key)=)[^&\s\"']+",
    re.IGNORECASE,
)
_BEARER = re.compile(r"(?P<key>Bearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
_POD_KEY = re.compile(r"\bpbk_[A-Za-z0-9_-]+")
#: The secret of a footage share link (``/s/pbs_…``, portal ``services.shares``). No ``\b``:
#: in a URL-encoded link (``next=%2Fs%2Fpbs_…`` in a query string) a word character precedes it.
_SHARE_SECRET = re.compile(r"pbs_[A-Za-z0-9_-]+")
#: Whatever token-like segment follows a share path (``/s/…``, ``%2Fs%2F…``): a link's secret
#: even without its prefix. 16+ characters, so short paths such as ``rtsp://cam/s/live`` stay.
_SHARE_PATH = re.compile(r"(?P<key>(?:/|%2F)s(?:/|%2F))(?!pbs_\*\*\*)[A-Za-z0-9_-]{16,}", re.I)


def strip_credentials(url: str) -> str:
    """Return ``url`` without any ``user:password@`` part (for storing camera URLs)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_text(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{host}:{port}" if port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def redact_url(url: str) -> str:
    """Return ``url`` with its password (and user) replaced by ``***``."""
    return redact_text(url)


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Mask URL credentials, bearer tokens, pod keys, secret query params and given secrets."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    text = _USERINFO.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", text)
    text = _SECRET_PARAMS.sub(lambda m: f"{m.group('key')}{REDACTED}", text)
    text = _BEARER.sub(lambda m: f"{m.group('key')}{REDACTED}", text)
    text = _SHARE_SECRET.sub(f"pbs_{REDACTED}", text)
    text = _SHARE_PATH.sub(lambda m: f"{m.group('key')}{REDACTED}", text)
    return _POD_KEY.sub(f"pbk_{REDACTED}", text)


# --- log records --------------------------------------------------------------------------------
# Libraries log secrets in forms ``redact_text`` does not know: websockets writes each request
# header as ``> Authorization: Bearer …``, httpcore header tuples ``(b'Cookie', b'…')``, the
# database drivers and SQLAlchemy the bound parameters (key and password hashes, session hashes).

_SENSITIVE_HEADER = r"(?:proxy-authorization|authorization|set-cookie|cookie|x-api-key)"
# ``(b'Authorization', b'…')``, ``'cookie': '…'``, ``"Set-Cookie": "…"``
_QUOTED_HEADER = re.compile(
    rf"(?P<key>(?P<k>b?['\"]){_SENSITIVE_HEADER}(?P=k)\s*[,:]\s*b?)(?P<q>['\"]).*?(?<!\\)(?P=q)",
    re.IGNORECASE,
)
# ``> Authorization: Bearer …`` up to the end of the line
_HEADER_LINE = re.compile(rf"(?P<key>\b{_SENSITIVE_HEADER}\s*:\s*)(?![\s'\"]|\*\*\*)[^\r\n]+", re.I)
_SENSITIVE_NAME = (
    r"[A-Za-z_-]*(?:password|passwd|secret|token|api_key|apikey|pb_session)[A-Za-z_-]*"
)
# ``"password": "…"``, ``'stream_token_secret': '…'``, ``password='…'``
_QUOTED_SECRET = re.compile(
    rf"(?P<key>(?P<k>['\"]?){_SENSITIVE_NAME}(?P=k)\s*[:=]\s*)(?P<q>['\"]).*?(?<!\\)(?P=q)",
    re.IGNORECASE,
)
_SESSION_COOKIE = re.compile(r"(?P<key>\bpb_session=)[^;\s\"',)]+")
_ENROLLMENT_KEY = re.compile(r"\bpbe_[A-Za-z0-9_-]+")
# a stream token: base64url of a JSON object (``{"`` encodes as ``eyJ``) "." signature
_STREAM_TOKEN = re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}")
_PASSWORD_HASH = re.compile(r"\$(?:argon2(?:id|i|d)|2[aby])\$[^\s'\",)]+")
#: Loggers that log bound SQL parameters or driver calls carrying them.
_DB_LOGGERS = ("sqlalchemy.engine", "sqlalchemy.pool", "aiosqlite", "asyncpg")


def redact_log_text(text: str) -> str:
    """``redact_text`` plus the header, cookie, key/value and token forms found in debug logs."""
    text = _QUOTED_HEADER.sub(
        lambda m: f"{m.group('key')}{m.group('q')}{REDACTED}{m.group('q')}", text
    )
    text = _QUOTED_SECRET.sub(
        lambda m: f"{m.group('key')}{m.group('q')}{REDACTED}{m.group('q')}", text
    )
    text = _HEADER_LINE.sub(lambda m: f"{m.group('key')}{REDACTED}", text)
    text = _SESSION_COOKIE.sub(lambda m: f"{m.group('key')}{REDACTED}", text)
    text = redact_text(text)
    text = _ENROLLMENT_KEY.sub(f"pbe_{REDACTED}", text)
    text = _STREAM_TOKEN.sub(REDACTED, text)
    return _PASSWORD_HASH.sub(REDACTED, text)


class _Masked:
    """An argument's ``str`` and ``repr``, redacted once (``%s`` and ``%r`` both still work)."""

    __slots__ = ("_repr", "_str")

    def __init__(self, value: object) -> None:
        self._str = redact_log_text(str(value))
        self._repr = redact_log_text(repr(value))

    def __str__(self) -> str:
        return self._str

    def __repr__(self) -> str:
        return self._repr


class _Hidden:
    """A database logger's argument (bound parameters, a driver call with its arguments)."""

    __slots__ = ("_text",)

    def __init__(self, value: object) -> None:
        name = getattr(getattr(value, "func", value), "__qualname__", type(value).__name__)
        self._text = f"<{name}: parameters hidden>"

    def __str__(self) -> str:
        return self._text

    __repr__ = __str__


def _mask_arg(value: object, hide: bool) -> object:
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return redact_log_text(value)
    return _Hidden(value) if hide else _Masked(value)


def redact_record(record: logging.LogRecord) -> None:
    """Redact ``record`` in place, once: message, arguments, exception and stack text. Arguments
    keep their place (uvicorn's access formatter unpacks ``record.args``); when the formatted
    message still holds a secret spread over several arguments, the record is flattened."""
    if getattr(record, "_pb_redacted", False):
        return
    record._pb_redacted = True
    hide = record.name.startswith(_DB_LOGGERS)
    if isinstance(record.msg, str):
        record.msg = redact_log_text(record.msg)
    elif record.msg is not None:
        record.msg = _Masked(record.msg)
    args = record.args
    if isinstance(args, tuple):
        record.args = tuple(_mask_arg(a, hide) for a in args)
    elif isinstance(args, Mapping):
        record.args = {k: _mask_arg(v, hide) for k, v in args.items()}
    try:
        message = record.getMessage()
    except Exception:  # a malformed record: keep only its redacted template
        record.args = ()
    else:
        flat = redact_log_text(message)
        if flat != message:
            record.msg, record.args = flat, ()
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact_log_text(record.exc_text)
    if record.stack_info:
        record.stack_info = redact_log_text(record.stack_info)


class LogRedactionFilter(logging.Filter):
    """A handler filter running :func:`redact_record` (for records made before the factory)."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


_installed: list[Callable[..., logging.LogRecord]] = []


def install_log_redaction() -> None:
    """Redact every log record of every logger (ours, uvicorn's, websockets', httpx's, the
    database drivers'…) when it is created, and add the filter to every existing handler.
    Idempotent; call it again after (re)configuring handlers."""
    if not _installed:
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            redact_record(record)
            return record

        _installed.append(factory)
        logging.setLogRecordFactory(factory)
    loggers: list[logging.Logger] = [logging.getLogger()]
    loggers += [
        lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)
    ]
    for logger in loggers:
        for handler in logger.handlers:
            if not any(isinstance(f, LogRedactionFilter) for f in handler.filters):
                handler.addFilter(LogRedactionFilter())
