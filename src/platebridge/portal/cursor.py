"""Opaque, signed page cursors for the listings (``GET /api/cameras``, ``GET /api/pods``).

A cursor is ``<payload>.<mac>``: the payload is the base64url JSON of the last row's sort key
and the listing's total (counted once, on the first page, and carried on); the MAC is the first
16 bytes of HMAC-SHA256 over the payload and the cursor's *scope* (the listing, the user's
company and the filters), keyed by a key derived from the portal's ``secret_key``. So a cursor
cannot be forged or altered, a cursor of company A is refused for company B (and would reveal
nothing: queries stay scoped), and a cursor only continues the listing it came from (same
filters). Every refusal is one 400 ``invalid_cursor``; the content (site, pod and camera names
of the caller's own company) is not secret, only unforgeable.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence

import orjson

from platebridge.portal.errors import ApiError

#: Longest cursor accepted (a key of 3 x 200-character names, base64 + MAC, fits).
MAX_CURSOR_LENGTH = 1200
_MAC_BYTES = 16
_MAX_VALUE = 200


def cursor_key(secret_key: str) -> bytes:
    """The cursors' own key (the portal's secret is never used directly for them)."""
    return hmac.new(secret_key.encode(), b"platebridge listing cursor v1", hashlib.sha256).digest()


def _mac(key: bytes, scope: str, payload: bytes) -> bytes:
    return hmac.new(key, scope.encode() + b"\n" + payload, hashlib.sha256).digest()[:_MAC_BYTES]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_cursor(key: bytes, scope: str, values: Sequence[str], total: int) -> str:
    payload = _b64(orjson.dumps({"k": list(values), "n": total})).encode()
    return f"{payload.decode()}.{_b64(_mac(key, scope, payload))}"


def invalid_cursor() -> ApiError:
    return ApiError(
        400,
        "invalid_cursor",
        "the cursor is not valid for this listing (pass next_cursor unchanged, with the same "
        "filters)",
    )


def decode_cursor(key: bytes, scope: str, cursor: str, size: int) -> tuple[tuple[str, ...], int]:
    """The sort key (``size`` strings) and total a cursor of ``scope`` carries, or 400
    ``invalid_cursor``."""
    if len(cursor) > MAX_CURSOR_LENGTH or cursor.count(".") != 1:
        raise invalid_cursor()
    payload, mac = cursor.split(".")
    try:
        given = _unb64(mac)
        if not hmac.compare_digest(given, _mac(key, scope, payload.encode())):
            raise invalid_cursor()
        doc = orjson.loads(_unb64(payload))
    except (ValueError, binascii.Error, orjson.JSONDecodeError):
        raise invalid_cursor() from None
    values = doc.get("k") if isinstance(doc, dict) else None
    total = doc.get("n") if isinstance(doc, dict) else None
    if (
        not isinstance(values, list)
        or len(values) != size
        or not all(isinstance(v, str) and len(v) <= _MAX_VALUE for v in values)
        or not isinstance(total, int)
        or isinstance(total, bool)
        or total < 0
    ):
        raise invalid_cursor()
    return tuple(values), total


def read_cursor(
    key: bytes, scope: str, cursor: str | None, size: int
) -> tuple[tuple[str, ...] | None, int | None]:
    """The sort key to continue after and the total so far ((None, None): the first page)."""
    if cursor is None:
        return None, None
    return decode_cursor(key, scope, cursor, size)


def next_cursor(key: bytes, scope: str, last: Sequence[str] | None, total: int) -> str | None:
    """The cursor of the next page (None: this page is the last)."""
    return None if last is None else encode_cursor(key, scope, last, total)
