"""Keep credentials out of logs, error texts and responses."""

from __future__ import annotations

import re
from collections.abc import Iterable
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
    return _POD_KEY.sub(f"pbk_{REDACTED}", text)
