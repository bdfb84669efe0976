"""The shipped nginx configuration (packaging/nginx/platebridge.conf), for real.

nginx with TLS (a test certificate) in front of two production-mode portal processes on one
PostgreSQL + Redis. Through it: the login page and a sign-in (Secure cookie, HSTS), a POD's
tunnel WebSocket (``wss://`` with the POD trusting the test CA via ``portal_ca_file``), and a
stream decoded by ffmpeg through the proxy route. Both portal processes serve requests (nginx
balances them; the one without the tunnel forwards to the other), and the audit trail records
the viewer's own address (127.0.0.2), not nginx's, nor a forged ``X-Forwarded-For``.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import require_postgres
from tests.support.agent import Agent
from tests.support.camera import TestCamera, camera_available
from tests.support.portal import (
    create_pg_database,
    drop_pg_database,
    migrate,
    portal_process,
    seed_company,
)
from tests.support.procs import Proc, free_port, wait_until
from tests.tunnel.support import (
    SECRET_KEY,
    agent_config,
    ffmpeg_decode,
    pod_row,
    set_mode,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not camera_available(), reason="needs ffmpeg and the GStreamer camera"),
    pytest.mark.skipif(shutil.which("nginx") is None, reason="needs nginx (scripts/setup.sh)"),
]
REDIS_URL = "redis://127.0.0.1:6379/0"
VIEWER_ADDRESS = "127.0.0.2"


RENDER = Path(__file__).resolve().parents[2] / "scripts" / "render-nginx.sh"


def site_config(tmp: Path, https_port: int, http_port: int, backends: list[int]) -> str:
    """The shipped file as ``install-portal.sh`` renders it, listening on loopback ports."""
    result = subprocess.run(
        ["bash", str(RENDER), "--domain", "portal.test", "--cert", str(tmp / "cert.pem"),
         "--key", str(tmp / "key.pem"), "--ports", ",".join(map(str, backends)),
         "--https-listen", f"127.0.0.1:{https_port}", "--http-listen", f"127.0.0.1:{http_port}",
         "--acme-root", str(tmp / "acme"), "--access-log", str(tmp / "access.log")],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


def _main_config(tmp: Path, site: Path) -> str:
    """What /etc/nginx/nginx.conf provides around a conf.d file, in the test's own directory."""
    return f"""
daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 256; }}
http {{
    log_format upstreams '$request_method $uri $status $upstream_addr';
    access_log {tmp}/access.log upstreams;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    include {site};
}}
"""


def _certificate(tmp: Path) -> Path:
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(tmp / "key.pem"), "-out", str(tmp / "cert.pem")],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return tmp / "cert.pem"


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


@pytest.fixture
def pg_url() -> Iterator[str]:
    require_postgres()
    url = create_pg_database("pb_nginx")
    try:
        migrate(url)  # production portals never migrate at start: the deploy does it once
        yield url
    finally:
        drop_pg_database(url)


def _production_env(node_port: int) -> dict[str, str]:
    return {
        "PLATEBRIDGE_ENVIRONMENT": "production",
        "PLATEBRIDGE_SECRET_KEY": SECRET_KEY,
        "PLATEBRIDGE_COOKIE_SECURE": "true",
        "PLATEBRIDGE_MIGRATE_ON_START": "false",
        "PLATEBRIDGE_REDIS_URL": REDIS_URL,
        "PLATEBRIDGE_NODE_URL": f"http://127.0.0.1:{node_port}",
        "PLATEBRIDGE_TRUSTED_PROXIES": "127.0.0.1",
        "PLATEBRIDGE_POD_NETWORKS": "127.0.0.0/8",
    }


def test_nginx_tls_two_portals_tunnel_and_stream(tmp_path: Path, pg_url: str) -> None:
    if len(SECRET_KEY) < 32:
        pytest.fail("the shared test SECRET_KEY must be production-sized (32+ characters)")
    tenant = seed_company(pg_url)
    set_mode(pg_url, tenant, "tunnel")
    cert = _certificate(tmp_path)
    (tmp_path / "acme").mkdir()
    https_port, http_port = free_port(), free_port()
    ports = [free_port(), free_port()]
    site = tmp_path / "platebridge.conf"
    site.write_text(site_config(tmp_path, https_port, http_port, ports))
    main = tmp_path / "nginx.conf"
    main.write_text(_main_config(tmp_path, site))
    check = subprocess.run(
        ["nginx", "-t", "-p", str(tmp_path), "-c", str(main), "-e", str(tmp_path / "error.log")],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert check.returncode == 0, check.stderr

    camera = TestCamera(tmp_path)
    camera.start()
    with (
        portal_process(pg_url, _production_env(ports[0]), port=ports[0]) as a,
        portal_process(pg_url, _production_env(ports[1]), port=ports[1]) as b,
    ):
        nginx = Proc(
            ["nginx", "-p", str(tmp_path), "-c", str(main), "-e", str(tmp_path / "error.log")],
            log_path=tmp_path / "nginx.out",
        )
        agent: Agent | None = None
        try:
            wait_until(lambda: _listening(https_port), timeout=15, what="nginx listening")
            base = f"https://127.0.0.1:{https_port}"
            viewer = httpx.Client(
                base_url=base,
                transport=httpx.HTTPTransport(
                    local_address=VIEWER_ADDRESS, verify=ssl.create_default_context(cafile=cert)
                ),
                timeout=20,
            )

            # Plain HTTP is sent to HTTPS; the login page comes over TLS with HSTS.
            r = httpx.get(f"http://127.0.0.1:{http_port}/login", timeout=10)
            assert r.status_code == 301 and r.headers["location"].startswith("https://")
            page = viewer.get("/login")
            assert page.status_code == 200 and "<form" in page.text
            assert page.headers["strict-transport-security"].startswith("max-age=")

            # Sign-in through nginx: the session cookie is Secure in production.
            login = viewer.post(
                "/api/auth/login", json={"email": tenant.email, "password": tenant.password}
            )
            assert login.status_code == 200, login.text
            assert "secure" in login.headers["set-cookie"].lower()
            auth = {"Authorization": f"Bearer {login.json()['access_token']}"}

            # The POD knows nothing but the public URL and the CA: its tunnel is a wss://
            # WebSocket through nginx (the portal's heartbeat answer turns it on).
            config = agent_config(
                tmp_path, tenant, camera.url, portal_url=base, portal_ca_file=str(cert)
            )
            config.pop("tunnel")
            agent = Agent(tmp_path, config)
            wait_until(
                lambda: pod_row(a.url, auth, tenant.pod_id)["tunnel_connected"],
                timeout=60,
                what="the POD's tunnel through nginx",
            )

            def token() -> str | None:
                r = viewer.post(
                    "/api/pod/stream-token",
                    headers={**auth, "X-Forwarded-For": "203.0.113.7"},  # forged: overwritten
                    json={"pod_id": tenant.pod_id, "camera_id": "gate-camera-1"},
                )
                if r.status_code == 409:
                    return None
                assert r.status_code == 200, r.text
                return str(r.json()["token"])

            stream_token = wait_until(token, timeout=40, what="camera active")
            url = (
                f"{base}/api/pod/proxy-stream/{tenant.pod_id}"
                f"?camera_id=gate-camera-1&token={stream_token}"
            )
            assert ffmpeg_decode(url, frames=10) >= 10  # TLS -> nginx -> portal -> tunnel -> POD

            share = "pbs_" + "Q" * 43  # (no such link: 404, but it is a secret's shape)
            assert viewer.get(f"/s/{share}").status_code == 404
            log = (tmp_path / "access.log").read_text()
            served = {p for p in ports if f"127.0.0.1:{p}" in log}
            assert served == set(ports), f"nginx should balance over both processes: {log[-2000:]}"
            # the shipped log format keeps secrets out: no query strings, share links masked
            assert stream_token not in log and "token=" not in log
            assert share not in log and "GET /s/<share-link> 404" in log

            # The token was issued to the viewer (127.0.0.2, via X-Forwarded-For from nginx);
            # ffmpeg, which played the stream, connected from 127.0.0.1.
            events = viewer.get("/api/audit", headers=auth).json()["events"]
            issued = {e["client_ip"] for e in events if e["action"] == "token_issued"}
            started = {
                (e["client_ip"], e["method"]) for e in events if e["action"] == "stream_started"
            }
            assert issued == {VIEWER_ADDRESS}, events
            assert started == {("127.0.0.1", "tunnel")}, events
            agent.close()  # nginx logs the tunnel's upgrade when the WebSocket ends
            wait_until(
                lambda: "GET /api/pod/tunnel 101" in (tmp_path / "access.log").read_text(),
                timeout=15,
                what="the tunnel's WebSocket upgrade (101) in nginx's log",
            )
        finally:
            if agent is not None:
                agent.close()
            nginx.stop()
            camera.stop()
    for portal in (a, b):
        log = portal.log_path.read_text()
        assert "Traceback" not in log, log[-3000:]
    assert "[emerg]" not in (tmp_path / "error.log").read_text()


def test_shipped_config_is_valid_nginx(tmp_path: Path) -> None:
    """``nginx -t`` on the shipped file as the installer renders it."""
    _certificate(tmp_path)
    (tmp_path / "acme").mkdir()
    site = tmp_path / "platebridge.conf"
    site.write_text(site_config(tmp_path, free_port(), free_port(), [8081, 8082]))
    main = tmp_path / "nginx.conf"
    main.write_text(_main_config(tmp_path, site))
    env = {**os.environ}
    check = subprocess.run(
        ["nginx", "-t", "-p", str(tmp_path), "-c", str(main), "-e", str(tmp_path / "error.log")],
        capture_output=True, text=True, timeout=30, env=env,
    )  # fmt: skip
    assert check.returncode == 0, check.stderr
