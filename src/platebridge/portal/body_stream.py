"""Stream an upstream body to the viewer, and notice the viewer leaving.

One response class for every place the portal hands on a body it is still receiving: the
relay's segments (:mod:`platebridge.portal.streaming.relay`) and the tunnel's node-to-node
forwarding (:mod:`platebridge.portal.tunnel.routes`). It lives at portal level, importing
neither, so the tunnel need not import streaming.

* The status and headers go out first, then the body chunk by chunk, never held whole.
* An upstream failure mid-body (:class:`httpx.HTTPError`, which the lean client's errors are
  too) ends the response *without* its final message: the server closes the connection, so the
  viewer sees a truncated body, not a complete-looking one.
* A viewer who disconnects (``http.disconnect``, or a send failing with :class:`OSError`) cancels
  the relay at once.
* However it ends, the upstream response is closed (shielded from the cancellation, at most
  :data:`CLOSE_TIMEOUT` seconds) — never returned to a pool half-read.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable, Iterable
from typing import Protocol

import anyio
import httpx
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

#: A close that hangs longer than this is abandoned (the connection is dropped with the task).
CLOSE_TIMEOUT = 5.0


class Closable(Protocol):
    """The upstream response: httpx's, or the lean client's."""

    async def aclose(self) -> None: ...


class BodyStream(StreamingResponse):
    """Sends ``status_code``, ``headers`` (as given, in order) and then ``chunks``.

    ``upstream`` is closed when the response ends. With ``log`` given, a body cut short by the
    upstream is logged at WARNING and any unfinished body at INFO, as ``"<label> ..."`` naming
    ``log_url`` (rendered only then: pass something whose ``str`` is redacted).
    """

    def __init__(
        self,
        upstream: Closable,
        chunks: AsyncIterable[bytes],
        *,
        status_code: int = 200,
        headers: Iterable[tuple[str, str]] = (),
        log: logging.Logger | None = None,
        log_url: object = None,
        label: str = "relay",
    ) -> None:
        super().__init__(chunks, status_code=status_code)
        self._upstream = upstream
        self._log = log
        self._log_url = log_url
        self._label = label
        self.raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
        #: True once the whole body went out with its final message.
        self.completed = False

    async def _send_body(self, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        try:
            async for chunk in self.body_iterator:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except httpx.HTTPError as exc:
            if self._log is not None:
                self._log.warning(
                    "%s cut short, %s from %s", self._label, type(exc).__name__, self._log_url
                )
            return  # no final message: the server closes the connection, the body is truncated
        except OSError:
            return  # the viewer went away (ASGI servers implementing spec 2.4)
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        self.completed = True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            async with anyio.create_task_group() as group:

                async def watch_disconnect() -> None:
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    group.cancel_scope.cancel()

                group.start_soon(watch_disconnect)
                await self._send_body(send)
                group.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(CLOSE_TIMEOUT):
                await self._upstream.aclose()
            if not self.completed and self._log is not None:
                self._log.info("%s ended before completion: %s", self._label, self._log_url)
