"""The one httpx client factory: real requests over loopback, and the check that it stays the
only place a client is built."""

from __future__ import annotations

import ast
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from platebridge import __version__
from platebridge.core.http_client import new_async_client, user_agent

SRC = Path(__file__).resolve().parents[2] / "src" / "platebridge"
FACTORY = SRC / "core" / "http_client.py"
PROXY_VARS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")


class Server:
    """A loopback HTTP server in a thread that records what it was asked."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.requests: list[tuple[str, dict[str, str]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                if self.path.endswith("/redirect"):
                    self.send_response(302)
                    self.send_header("Location", "/landed")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = server.name.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]


@pytest.fixture
def target() -> Iterator[Server]:
    yield from _serve(Server("target"))


@pytest.fixture
def proxy() -> Iterator[Server]:
    yield from _serve(Server("proxy"))


def _serve(server: Server) -> Iterator[Server]:
    server.thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
        server.thread.join(5)


@pytest.fixture
def proxy_env(proxy: Server, monkeypatch: pytest.MonkeyPatch) -> Server:
    for name in PROXY_VARS:
        monkeypatch.setenv(name, proxy.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    return proxy


async def test_environment_proxy_is_ignored(target: Server, proxy_env: Server) -> None:
    async with new_async_client(timeout=5, component="test") as client:
        response = await client.get(f"{target.url}/stream?token=secret")
    assert response.status_code == 200
    assert response.text == "target"
    assert target.paths() == ["/stream?token=secret"]
    assert proxy_env.requests == []


async def test_the_proxy_test_would_notice_a_client_that_trusts_the_environment(
    target: Server, proxy_env: Server
) -> None:
    """Control: httpx's own default (trust_env=True) does go through the proxy set above."""
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(f"{target.url}/stream?token=secret")
    assert response.text == "proxy"
    assert proxy_env.paths() == [f"{target.url}/stream?token=secret"]
    assert target.requests == []


async def test_redirects_are_not_followed(target: Server) -> None:
    async with new_async_client(timeout=5, component="test") as client:
        response = await client.get(f"{target.url}/redirect")
    assert response.status_code == 302
    assert response.headers["location"] == "/landed"
    assert target.paths() == ["/redirect"]


async def test_user_agent_names_platebridge_and_its_version(target: Server) -> None:
    async with new_async_client(
        timeout=5, component="pod", headers={"Accept-Encoding": "identity"}
    ) as client:
        await client.get(f"{target.url}/health")
    (_, headers), *_ = target.requests
    assert headers["user-agent"] == f"platebridge-pod/{__version__}" == user_agent("pod")
    assert headers["accept-encoding"] == "identity"


async def test_base_url_and_limits_are_passed_on(target: Server) -> None:
    limits = httpx.Limits(max_connections=3, keepalive_expiry=1.0)
    async with new_async_client(
        timeout=5, component="test", base_url=target.url, limits=limits
    ) as client:
        response = await client.get("/health")
    assert response.text == "target"
    assert target.paths() == ["/health"]


def test_a_number_sets_every_timeout() -> None:
    client = new_async_client(timeout=2.5, component="test")
    assert client.timeout == httpx.Timeout(2.5)
    assert client.timeout.connect == client.timeout.read == client.timeout.pool == 2.5


def test_explicit_timeouts_are_required() -> None:
    with pytest.raises(ValueError, match="connect"):
        new_async_client(timeout=httpx.Timeout(None), component="test")
    with pytest.raises(ValueError, match="connect"):
        new_async_client(timeout=httpx.Timeout(5, connect=None), component="test")
    # no read deadline is allowed: the hub's forwarding client sets one per request
    client = new_async_client(timeout=httpx.Timeout(3, read=None), component="test")
    assert client.timeout.read is None and client.timeout.connect == 3


def test_user_agent_cannot_be_overridden() -> None:
    with pytest.raises(ValueError, match="User-Agent"):
        new_async_client(timeout=5, component="test", headers={"user-agent": "curl/8"})


# --- the factory stays the one place ------------------------------------------------------------

_CLIENTS = {"AsyncClient", "Client"}


def _client_calls(source: str) -> list[int]:
    """Line numbers of ``httpx.AsyncClient(``/``httpx.Client(`` calls in ``source`` — also
    through ``import httpx as h`` or ``from httpx import AsyncClient as C``."""
    tree = ast.parse(source)
    modules = {"httpx"}
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(a.asname or a.name for a in node.names if a.name == "httpx")
        elif isinstance(node, ast.ImportFrom) and node.module == "httpx":
            names.update(a.asname or a.name for a in node.names if a.name in _CLIENTS)
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if (
            isinstance(func, ast.Attribute)
            and func.attr in _CLIENTS
            and isinstance(func.value, ast.Name)
            and func.value.id in modules
        ) or (isinstance(func, ast.Name) and func.id in names):
            lines.append(node.lineno)
    return lines


def test_client_call_finder_finds_every_spelling() -> None:
    source = (
        "import httpx\nimport httpx as h\nfrom httpx import AsyncClient as C, Client\n"
        "a = httpx.AsyncClient(timeout=1)\nb = h.Client()\nc = C()\nd = Client()\n"
        "e = httpx.Timeout(1)\nf = httpx.AsyncClient\n"
    )
    assert _client_calls(source) == [4, 5, 6, 7]


def test_only_the_factory_builds_an_httpx_client() -> None:
    found = {
        str(path.relative_to(SRC)): lines
        for path in sorted(SRC.rglob("*.py"))
        if path != FACTORY and (lines := _client_calls(path.read_text()))
    }
    assert found == {}, f"build clients with platebridge.core.http_client: {found}"
    assert len(_client_calls(FACTORY.read_text())) == 1
