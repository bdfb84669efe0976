"""A real webhook receiver for the tests: ``http.server`` on 127.0.0.1 in a thread that records
every POST and answers the statuses scripted for it (then 200); a 3xx carries a Location.

    with Receiver() as receiver:
        receiver.script = [500, 500]          # the first two requests fail
        url = receiver.url("/hook")           # http://127.0.0.1:<port>/hook?token=...
        ...
        receiver.hits[0].headers["x-platebridge-delivery"]
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: The query string of :meth:`Receiver.url` (a receiver's token, never to be logged).
TOKEN = "receiver-query-token"


@dataclass
class Hit:
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes


@dataclass
class Receiver:
    """Records every request; answers the statuses in ``script`` first, then 200."""

    hits: list[Hit] = field(default_factory=list)
    script: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0
    #: Called with each request after it is recorded and before it is answered (a receiver
    #: that holds a request open: the sender dies mid-request).
    before_answer: Callable[[Hit], None] | None = None
    _server: ThreadingHTTPServer | None = None

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}?token={TOKEN}"

    def ids(self) -> list[str]:
        """The X-PlateBridge-Delivery header of each request, in order."""
        return [h.headers["x-platebridge-delivery"] for h in self.hits]

    def __enter__(self) -> Receiver:
        state = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                hit = Hit(self.path, headers, body)
                with state.lock:
                    state.hits.append(hit)
                    status = state.script.pop(0) if state.script else 200
                if state.before_answer is not None:
                    state.before_answer(hit)
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", f"http://127.0.0.1:{state.port}/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
