"""Debian's nginx as a child process (``daemon off``) with a temporary config on a free
loopback port: the static stand-in POD and the ``proxy_pass`` anchor of bench/proxy_relay.py."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tests.support.procs import Proc, free_port, wait_for_http

_MAIN = """daemon off;
master_process on;
worker_processes 1;
user root;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  client_body_temp_path {tmp}/client;
  proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi;
  scgi_temp_path {tmp}/scgi;
  {body}
}}
"""


def nginx_binary() -> str | None:
    return shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )


@contextlib.contextmanager
def run_nginx(http_body: str, port: int | None = None) -> Iterator[tuple[str, Proc]]:
    """Start nginx with ``http_body`` (``{port}`` is substituted); yield (base URL, process)."""
    exe = nginx_binary()
    if exe is None:
        raise RuntimeError("nginx is not installed (Debian package nginx-light; scripts/setup.sh)")
    port = port or free_port()
    tmp = Path(tempfile.mkdtemp(prefix="pb-bench-nginx-"))
    conf = tmp / "nginx.conf"
    conf.write_text(_MAIN.format(tmp=tmp, body=http_body.replace("{port}", str(port))))
    proc = Proc(
        [exe, "-e", str(tmp / "stderr.log"), "-p", str(tmp), "-c", str(conf)],
        log_path=tmp / "out.log",
    )
    base = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_for_http(base + "/nginx-health", timeout=15, proc=proc.popen)
        except (TimeoutError, RuntimeError) as exc:
            errors = (tmp / "error.log").read_text() if (tmp / "error.log").exists() else ""
            raise RuntimeError(f"nginx did not start: {exc}\n{proc.output()}\n{errors}") from None
        yield base, proc
    finally:
        proc.stop()
        proc.kill_group()
        shutil.rmtree(tmp, ignore_errors=True)


def static_pod_config(root: Path, camera_id: str) -> str:
    """A POD stand-in: ``/stream`` is the playlist, ``/stream/{camera}/NAME`` a segment."""
    return f"""
  server {{
    listen 127.0.0.1:{{port}};
    location = /nginx-health {{ return 200 "ok"; }}
    location = /stream {{
      default_type application/vnd.apple.mpegurl;
      add_header Cache-Control no-cache;
      alias {root}/index.m3u8;
    }}
    location /stream/{camera_id}/ {{
      types {{ }}
      default_type video/mp2t;
      alias {root}/segments/;
    }}
  }}
"""


def proxy_config(upstream_port: int) -> str:
    """``proxy_pass`` to the stand-in POD with upstream keep-alive (nginx's usual set-up)."""
    return f"""
  upstream pod {{ server 127.0.0.1:{upstream_port}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{{port}};
    location = /nginx-health {{ return 200 "ok"; }}
    location / {{
      proxy_pass http://pod;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }}
  }}
"""
