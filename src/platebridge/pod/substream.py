"""A camera's substream, run only while watched (``sub_rtsp_url``, docs/live.md "Substreams").

:class:`OnDemand` starts a runner (the substream's own :class:`CameraSupervisor`: one ffmpeg,
one RTSP session, the live fMP4 output only) when its first viewer arrives and stops it
``idle`` seconds after the last viewer left, so a camera that allows few RTSP sessions spends
one on its substream only while a grid shows it. A viewer arriving while it stops waits for the
stop to finish, then starts it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

log = logging.getLogger("platebridge.pod.camera")

#: Seconds a stopping runner gets before its task is cancelled.
STOP_GRACE = 8.0


class Runner(Protocol):
    """What :class:`OnDemand` runs (a supervisor): ``run`` until ``stop``; ``rearm`` before a
    new ``run`` after a stop."""

    async def run(self) -> None: ...

    async def stop(self) -> None: ...

    def rearm(self) -> None: ...


class OnDemand:
    def __init__(self, name: str, runner: Runner, idle: float) -> None:
        self.name = name
        self.runner = runner
        self.idle = idle
        self.viewers = 0
        #: Runs started so far (tests and /health-style introspection).
        self.starts = 0
        self._task: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._stopping: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._closed = False

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def acquire(self) -> None:
        """One more viewer: start the runner unless it runs (or we are closed)."""
        self.viewers += 1
        self._cancel_timer()
        async with self._lock:
            if self._stopping is not None:
                await asyncio.shield(self._stopping)
            if self._closed or self.running or self.viewers <= 0:
                return
            self.runner.rearm()
            self.starts += 1
            log.info("%s: first viewer, starting", self.name)
            self._task = asyncio.create_task(self._run(), name=f"substream {self.name}")

    def release(self) -> None:
        """One viewer fewer; the last one leaving stops the runner after ``idle`` seconds."""
        self.viewers = max(0, self.viewers - 1)
        if self.viewers == 0 and self._timer is None and self.running:
            self._timer = asyncio.get_running_loop().call_later(self.idle, self._expire)

    async def _run(self) -> None:
        try:
            await self.runner.run()
        except Exception as exc:  # a failing substream must not take the agent down
            log.error("%s failed: %s", self.name, type(exc).__name__)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        self._timer = None
        if self.viewers == 0 and self.running and self._stopping is None:
            log.info("%s: no viewer for %.0f s, stopping", self.name, self.idle)
            self._stopping = asyncio.create_task(self._stop())

    async def _stop(self) -> None:
        try:
            await self.runner.stop()
            task = self._task
            if task is not None:
                done, _ = await asyncio.wait({task}, timeout=STOP_GRACE)
                if not done:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
        finally:
            self._stopping = None

    async def close(self) -> None:
        """Stop for good (the agent is shutting down): no later viewer starts it again."""
        self._closed = True
        self._cancel_timer()
        if self._stopping is not None:
            await asyncio.shield(self._stopping)
        if self.running:
            await self._stop()
