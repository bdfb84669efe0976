"""CSRF tokens.

Signed-in: ``HMAC(secret_key, session token)`` — nothing to store, valid exactly as long as the
session, and unforgeable without the session cookie (which scripts of other sites cannot read).
Forms carry it in ``csrf_token``, scripts in ``X-CSRF-Token``; ``deps.require_user`` checks it
for every unsafe request authenticated by the cookie. Bearer-authenticated calls need none
(a browser never attaches a bearer header on its own).

Signed-out (the login form): double submit — a random ``pb_csrf`` cookie echoed in the form.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import parse_qs

from starlette.requests import Request

from platebridge.portal.limits import MAX_REQUEST_BODY, read_body_capped

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
LOGIN_CSRF_COOKIE = "pb_csrf"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def session_csrf_token(secret_key: str, session_token: str) -> str:
    mac = hmac.new(secret_key.encode(), b"csrf:" + session_token.encode(), hashlib.sha256)
    return mac.hexdigest()


def new_login_csrf() -> str:
    return secrets.token_urlsafe(32)


def tokens_match(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())


async def form_fields(request: Request) -> dict[str, str]:
    """A urlencoded form body (first value per field); empty for other content types.

    The body is read once and cached by Starlette, so the guard and the route both see it."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        return {}
    body = await read_body_capped(request, MAX_REQUEST_BODY)
    request._body = body  # cache for the route (read_body_capped streams)
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=100)
    except (UnicodeDecodeError, ValueError):
        return {}
    return {key: values[0] for key, values in parsed.items()}


async def submitted_csrf(request: Request) -> str | None:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    return (await form_fields(request)).get(CSRF_FIELD)
