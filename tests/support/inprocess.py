"""The portal app in the test's own process: no server, no port, a real database.

For portal tests that need no real process (the fast lane). ``app_portal(db_url, env)`` builds
the app with ``create_app`` from the same ``PLATEBRIDGE_*`` settings a process would read, runs
its lifespan on an event loop in a background thread, and hands out a synchronous
``httpx.Client`` whose requests go through ``httpx.ASGITransport`` on that loop::

    with app_portal(db_url) as portal:
        r = portal.client.post("/api/pod/heartbeat", headers=seeded.pod_auth, json=...)

The seeding helpers of ``tests.support.portal`` (``asyncio.run`` on the test's thread) work
alongside, as they do against a process. Requests come from 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from platebridge.portal.app import create_app
from platebridge.portal.settings import PortalSettings

T = TypeVar("T")
#: seconds one request (or the lifespan) may take before the test fails
TIMEOUT = 30.0


class _Loop:
    """An asyncio loop in a daemon thread; ``run`` waits for a coroutine's result."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(TIMEOUT)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(TIMEOUT)
        self.loop.close()


class _SyncASGITransport(httpx.BaseTransport):
    """A sync transport that forwards each request to ``httpx.ASGITransport`` on ``loop``."""

    def __init__(self, app: Any, loop: _Loop) -> None:
        self._inner = httpx.ASGITransport(app=app, client=("127.0.0.1", 50123))
        self._loop = loop

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()  # the body as bytes: usable from the loop's side

        async def send() -> tuple[int, list[tuple[bytes, bytes]], bytes]:
            response = await self._inner.handle_async_request(request)
            assert isinstance(response.stream, httpx.AsyncByteStream)
            raw = b"".join([chunk async for chunk in response.stream])  # undecoded
            await response.aclose()
            return response.status_code, response.headers.raw, raw

        status, headers, raw = self._loop.run(send())
        return httpx.Response(status, headers=headers, stream=httpx.ByteStream(raw))


def settings_from_env(db_url: str, env: Mapping[str, str] | None = None) -> PortalSettings:
    """``PortalSettings`` as ``platebridge-portal serve`` would build them from ``env``.
    Alerts are off unless ``env`` turns them on: the shared test databases hold many tenants'
    pods, and a background pass must not write incidents a test did not ask for."""
    fields: dict[str, Any] = {"database_url": db_url, "alerts_enabled": False}
    for key, value in (env or {}).items():
        assert key.startswith("PLATEBRIDGE_"), key
        fields[key.removeprefix("PLATEBRIDGE_").lower()] = value
    return PortalSettings(**fields)


@dataclass
class AppPortal:
    """The in-process portal: ``client`` (base URL ``http://portal.test``) and its database."""

    client: httpx.Client
    db_url: str
    app: Any
    _logins: dict[str, dict[str, str]] = field(default_factory=dict)

    def login(self, email: str, password: str) -> dict[str, str]:
        """The user's auth header (one login per user: argon2 is deliberately slow)."""
        if email not in self._logins:
            r = self.client.post("/api/auth/login", json={"email": email, "password": password})
            r.raise_for_status()
            self._logins[email] = {"Authorization": f"Bearer {r.json()['access_token']}"}
        return self._logins[email]


@contextlib.contextmanager
def app_portal(db_url: str, env: Mapping[str, str] | None = None) -> Iterator[AppPortal]:
    """The portal app on a migrated ``db_url`` with ``env`` settings, lifespan started and
    stopped around the block."""
    app = create_app(settings_from_env(db_url, env))
    loop = _Loop()
    stack = contextlib.AsyncExitStack()
    try:
        loop.run(stack.enter_async_context(app.router.lifespan_context(app)))
        transport = _SyncASGITransport(app, loop)
        with httpx.Client(transport=transport, base_url="http://portal.test") as client:
            yield AppPortal(client=client, db_url=db_url, app=app)
    finally:
        loop.run(stack.aclose())
        loop.stop()
