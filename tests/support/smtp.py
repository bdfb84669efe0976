"""A real SMTP server for the tests (``aiosmtpd`` on 127.0.0.1): the portal's mail really goes
through an SMTP conversation (EHLO, optional STARTTLS and AUTH, MAIL, RCPT, DATA) and lands in
``SmtpServer.messages``, parsed.

    with SmtpServer() as smtp:                      # plain text (smtp_security=none)
        env = smtp.portal_env()                     # PLATEBRIDGE_SMTP_* for the portal
        ...
        message = smtp.wait_for(1)[0]
        url = invite_link(message)

``SmtpServer(tls=(cert, key), require_starttls=True, login=("u", "p"))`` offers STARTTLS with
the given certificate (see :func:`self_signed_cert`; it starts ``openssl``: e2e tests only) and
refuses mail before it, and accepts only that login; ``implicit_tls=True`` speaks TLS from the
first byte instead (``smtp_security=ssl``).
"""

from __future__ import annotations

import email
import email.policy
import re
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.support.procs import free_port

LINK = re.compile(r"https?://[^\s<>\"]+/invite\?token=[A-Za-z0-9_\-]+")


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    tls: bool

    def part(self, subtype: str) -> str:
        """The ``text/<subtype>`` body."""
        body = self.message.get_body(preferencelist=(subtype,))
        assert body is not None and body.get_content_subtype() == subtype, subtype
        content: str = body.get_content()
        return content


@dataclass
class _Mailbox:
    messages: list[Received] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)
    implicit_tls: bool = False  # every connection is TLS (aiosmtpd sets session.ssl on STARTTLS)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        with self.arrived:
            self.messages.append(
                Received(
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    parsed,
                    tls=self.implicit_tls or session.ssl is not None,
                )
            )
            self.arrived.notify_all()
        return "250 OK"


class SmtpServer:
    def __init__(
        self,
        *,
        tls: tuple[Path, Path] | None = None,
        require_starttls: bool = False,
        implicit_tls: bool = False,
        login: tuple[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.login = login
        self.tls = tls
        self._box = _Mailbox(implicit_tls=implicit_tls and tls is not None)
        self.implicit_tls = implicit_tls
        kwargs: dict[str, Any] = {}
        if tls is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(tls[0]), str(tls[1]))
            if implicit_tls:  # TLS from the first byte (smtp_security=ssl)
                kwargs.update(ssl_context=context)
            else:
                kwargs.update(tls_context=context, require_starttls=require_starttls)
        if login is not None:
            kwargs.update(authenticator=self._authenticate, auth_require_tls=tls is not None)
        self._controller = Controller(
            self._box, hostname="127.0.0.1", port=self.port, ready_timeout=10, **kwargs
        )

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and self.login is not None
            and (data.login.decode(), data.password.decode()) == self.login
        )
        return AuthResult(success=ok, handled=False)

    def __enter__(self) -> SmtpServer:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()

    @property
    def messages(self) -> list[Received]:
        return list(self._box.messages)

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Received]:
        """The first ``count`` messages, waiting for them (bounded)."""
        deadline = time.monotonic() + timeout
        with self._box.arrived:
            while len(self._box.messages) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"{len(self._box.messages)} of {count} e-mails arrived"
                self._box.arrived.wait(left)
            return list(self._box.messages[:count])

    def portal_env(self) -> dict[str, str]:
        """The portal's settings for this server."""
        env = {
            "PLATEBRIDGE_SMTP_HOST": "127.0.0.1",
            "PLATEBRIDGE_SMTP_PORT": str(self.port),
            "PLATEBRIDGE_SMTP_SECURITY": (
                "none" if not self.tls else "ssl" if self.implicit_tls else "starttls"
            ),
            "PLATEBRIDGE_SMTP_FROM": "PlateBridge <portal@example.test>",
        }
        if self.tls is not None:
            env["PLATEBRIDGE_SMTP_CA_FILE"] = str(self.tls[0])
        if self.login is not None:
            env["PLATEBRIDGE_SMTP_USERNAME"] = self.login[0]
            env["PLATEBRIDGE_SMTP_PASSWORD"] = self.login[1]
        return env


def invite_link(message: Received) -> str:
    """The one invitation/reset link of a message (the same in its text and HTML parts)."""
    found = set(LINK.findall(message.part("plain")))
    assert len(found) == 1, found
    link = found.pop()
    assert link in message.part("html")
    return link


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (its own CA) and its key, made by ``openssl`` (e2e)."""
    cert, key = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key
