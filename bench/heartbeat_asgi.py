"""CPU per unchanged heartbeat through the whole portal app, in-process (no HTTP server).

The app's ASGI callable is called directly, ``CONC`` requests at a time, against a fresh
PostgreSQL database with 500 seeded pods; prints portal CPU per request (process time),
latency, GC runs and how many fast-path statements ran. A/B another source tree with
``PYTHONPATH=/path/to/other/src`` (e.g. ``git archive REV src | tar -x -C /tmp/rev``).

    CONC=32 N=4000 [PROFILE=1] .venv/bin/python -m bench.heartbeat_asgi
"""

import asyncio
import cProfile
import gc
import os
import pstats
import time
from typing import Any

import uvloop

from bench.seed import open_db, seed_company
from tests.support.portal import create_pg_database, drop_pg_database, migrate, portal_env

N = int(os.environ.get("N", "5000"))
_T0 = [0.0]  # when the running collection started
PROFILE = os.environ.get("PROFILE") == "1"


def main():
    db_url = create_pg_database("pb_hbw_asgi")
    try:
        migrate(db_url)

        async def seed():
            db = open_db(db_url)
            try:
                return (await seed_company(db, "ASGI", 500)).pods
            finally:
                await db.dispose()

        pods = asyncio.run(seed())
        env = portal_env(db_url, {"PLATEBRIDGE_POD_NETWORKS": "127.0.0.0/8"})
        os.environ.update(env)
        from platebridge.portal.app import create_app

        app = create_app()
        uvloop.run(drive(app, pods))
    finally:
        drop_pg_database(db_url)


async def drive(app, pods):
    async with app.router.lifespan_context(app):
        msgs = []

        async def call(p, sink):
            body = p.body_a
            scope = {
                "type": "http",
                "asgi": {"version": "3.0"},
                "http_version": "1.1",
                "method": "POST",
                "scheme": "http",
                "path": "/api/pod/heartbeat",
                "raw_path": b"/api/pod/heartbeat",
                "query_string": b"",
                "root_path": "",
                "headers": [
                    (b"host", b"x"),
                    (b"authorization", f"Bearer {p.api_key}".encode()),
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
                "client": ("127.0.0.1", 5555),
                "server": ("127.0.0.1", 80),
                "state": {},
            }
            sent = False

            async def receive():
                nonlocal sent
                if not sent:
                    sent = True
                    return {"type": "http.request", "body": body, "more_body": False}
                await asyncio.sleep(3600)

            async def send(m):
                if m["type"] == "http.response.start":
                    sink.append(m["status"])

            await app(scope, receive, send)

        for p in pods[:200]:
            await call(p, msgs)
        assert set(msgs) == {200}, set(msgs)
        msgs.clear()
        gcs = []

        def cb(phase: str, info: dict[str, Any], t: list[float] = _T0) -> None:
            if phase == "start":
                t[0] = time.perf_counter()
            else:
                gcs.append((info["generation"], time.perf_counter() - t[0]))

        gc.callbacks.append(cb)
        import collections

        import asyncpg.connection as _ac

        qs = collections.Counter()
        _orig = _ac.Connection._do_execute

        def _spy(self, query, *a, **k):
            qs[query[:90]] += 1
            return _orig(self, query, *a, **k)

        _ac.Connection._do_execute = _spy
        prof = cProfile.Profile() if PROFILE else None
        lat = []
        c0, w0 = time.process_time(), time.perf_counter()
        if prof:
            prof.enable()
        CONC = int(os.environ.get("CONC", "1"))

        async def worker(w):
            for i in range(w, N, CONC):
                t = time.perf_counter()
                await call(pods[i % len(pods)], msgs)
                lat.append(time.perf_counter() - t)

        await asyncio.gather(*(worker(w) for w in range(CONC)))
        if prof:
            prof.disable()
        c1, w1 = time.process_time(), time.perf_counter()
        gc.callbacks.remove(cb)
        print("gc enabled", gc.isenabled(), gc.get_threshold(), len(gcs), gc.get_stats())
        assert set(msgs) == {200}, set(msgs)
        lat.sort()
        print("statements", sum(qs.values()), "for", N, "heartbeats")
        who = os.environ.get("PYTHONPATH") or "this checkout"
        print(
            f"{who} CONC={os.environ.get('CONC')} N={N}"
            f" cpu/req={1e6 * (c1 - c0) / N:.0f}us wall/req={1e6 * (w1 - w0) / N:.0f}us"
            f" p50={1e3 * lat[N // 2]:.2f}ms p99={1e3 * lat[int(N * 0.99)]:.2f}ms"
            f" max={1e3 * lat[-1]:.2f}ms"
        )
        by = {}
        for g, d in gcs:
            by.setdefault(g, []).append(d)
        for g, ds in sorted(by.items()):
            print(
                f"gc gen{g}: {len(ds)} runs,"
                f" max {1e3 * max(ds):.2f} ms, total {1e3 * sum(ds):.1f} ms"
            )
        if prof:
            st = pstats.Stats(prof)
            st.sort_stats("tottime").print_stats(35)


if __name__ == "__main__":
    main()
