"""Keys, passwords and session tokens.

API keys (``pbk_`` + 43 urlsafe chars = 256 bits) and session tokens are high-entropy, so a
single SHA-256 is a safe and fast lookup hash (argon2 would cap heartbeat throughput).
Passwords are low-entropy and get argon2id.
"""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

API_KEY_PREFIX = "pbk_"
_MAX_PRESENTED_LENGTH = 256
_hasher = PasswordHasher()
_dummy_hash: list[str] = []


def _dummy() -> str:
    """A hash to verify against when the e-mail is unknown, so both paths cost the same
    (made on first use: hashing at import would slow every CLI command)."""
    if not _dummy_hash:
        _dummy_hash.append(_hasher.hash(secrets.token_urlsafe(16)))
    return _dummy_hash[0]


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def new_session_token() -> str:
    return secrets.token_urlsafe(32)


def new_stream_secret() -> str:
    """256 random bits, urlsafe; never starting with ``-`` (a command line such as
    ``enroll --stream-secret VALUE`` would read it as an option: found by a test's 1-in-64 run)."""
    secret = secrets.token_urlsafe(32)
    while secret.startswith("-"):
        secret = secrets.token_urlsafe(32)
    return secret


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def key_display_prefix(key: str) -> str:
    """The first characters of a key, safe to show (``pbk_AbCd``)."""
    return key[: len(API_KEY_PREFIX) + 4]


def looks_like_api_key(value: str) -> bool:
    return value.startswith(API_KEY_PREFIX) and 8 < len(value) <= _MAX_PRESENTED_LENGTH


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _dummy(), password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False
