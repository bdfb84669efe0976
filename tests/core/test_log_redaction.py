"""``core.redact.install_log_redaction`` on synthetic records from the libraries both programs
use, written through a handler set up the way ``logging.basicConfig`` does (on the root)."""

from __future__ import annotations

import functools
import io
import logging
from collections.abc import Iterator

import pytest

from platebridge.core.redact import install_log_redaction, redact_log_text

POD_KEY = "pbk_Zx9Qw8Er7Ty6Ui5Op4As3Df2Gh1Jk0Lz"
TOKEN = "eyJ1c2VyX2lkIjoidSIsInBvZF9pZCI6InAifQ.NScewFB9HKE4T4zQxZkHTHj6VZUlF7jzU_N29mgPLDw"
SESSION = "sessTok-Aa1Bb2Cc3Dd4Ee5Ff6Gg7Hh8"
PASSWORD = "Hunter2-Passw0rd!"
HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"


@pytest.fixture
def output() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (root.level, root.handlers[:])  # the record factory stays: it only redacts
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)  # what basicConfig attaches to the root
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.handlers = [handler]
    root.setLevel(logging.DEBUG)
    try:
        install_log_redaction()
        yield stream
    finally:
        root.setLevel(saved[0])
        root.handlers = saved[1]


def test_every_library_logger_is_redacted(output: io.StringIO) -> None:
    logging.getLogger("websockets.client").debug("> %s: %s", "Authorization", f"Bearer {POD_KEY}")
    logging.getLogger("websockets.client").debug("> %s: %s", "Cookie", f"pb_session={SESSION}")
    logging.getLogger("httpcore.http11").debug(
        "send_request_headers.started request=%r",
        [(b"Host", b"x"), (b"Authorization", f"Bearer {SESSION}".encode())],
    )
    logging.getLogger("httpx").info("HTTP Request: GET http://h/api/pod/stream?token=%s", TOKEN)
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d',
        "127.0.0.1:1",
        "GET",
        f"/api/pod/proxy-stream/p?token={TOKEN}",
        "1.1",
        200,
    )
    logging.getLogger("uvicorn.error").debug("headers %r", {"set-cookie": f"pb_session={SESSION}"})
    logging.getLogger("sqlalchemy.engine.Engine").info(
        "[%s] %r", "generated in 0.001s", ("a@b.c", HASH, SESSION.encode())
    )
    call = functools.partial(print, "UPDATE users SET password_hash=?", (HASH,))
    logging.getLogger("aiosqlite").debug("executing %s", call)
    logging.getLogger("asyncpg").debug("params %s", (POD_KEY, PASSWORD))
    logging.getLogger("platebridge.pod").info("camera rtsp://cam:%s@127.0.0.1/s", PASSWORD)
    logging.getLogger("multipart.multipart").debug("field password=%r", PASSWORD)
    logging.getLogger("alembic").info('body {"password": "%s"}', PASSWORD)
    logging.getLogger("redis").debug("enroll pbe_AbCdEfGhIjKlMnOp1234")
    try:
        raise RuntimeError(f"auth failed for Bearer {POD_KEY}")
    except RuntimeError:
        logging.getLogger("asyncio").exception("Task exception")
    text = output.getvalue()
    for secret in (POD_KEY, TOKEN, SESSION, PASSWORD, HASH, "pbe_AbCdEf", "c2FsdHNhbHQ"):
        assert secret not in text, (secret, text)
    assert 'GET /api/pod/proxy-stream/p?token=*** HTTP/1.1" 200' in text  # args still format
    assert "> Authorization: ***" in text
    assert text.count("\n") >= 15  # every record was written, none dropped


def test_a_handler_added_later_is_covered_by_the_record_factory(output: io.StringIO) -> None:
    late = io.StringIO()
    logger = logging.getLogger("uvicorn.error")
    handler = logging.StreamHandler(late)
    logger.addHandler(handler)
    try:
        logger.warning("Authorization: Bearer %s", POD_KEY)
    finally:
        logger.removeHandler(handler)
    assert POD_KEY not in late.getvalue() and "Authorization: ***" in late.getvalue()


def test_redact_log_text_forms() -> None:
    assert redact_log_text(f"(b'Authorization', b'Bearer {SESSION}')") == (
        "(b'Authorization', b'***')"
    )
    assert SESSION not in redact_log_text(f"Set-Cookie: pb_session={SESSION}; Path=/")
    assert redact_log_text(f"'stream_token_secret': '{PASSWORD}'") == "'stream_token_secret': '***'"
    assert redact_log_text("plain text, nothing secret") == "plain text, nothing secret"
