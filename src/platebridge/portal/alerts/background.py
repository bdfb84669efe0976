"""The alert loops of one portal process: the evaluation pass and the delivery worker, started
and stopped with the app (``app.py`` lifespan)."""

from __future__ import annotations

import asyncio
import contextlib
import os

from platebridge.portal.alerts.observe import Holders
from platebridge.portal.alerts.runner import AlertRunner
from platebridge.portal.alerts.worker import DeliveryWorker
from platebridge.portal.db import Database
from platebridge.portal.settings import PortalSettings


class AlertLoops:
    """Both loops as tasks; :meth:`aclose` stops them (a pass in flight is cancelled and its
    transaction rolled back; a notice being sent keeps its lease and is retried)."""

    def __init__(
        self, db: Database, settings: PortalSettings, holders: Holders | None, node: str
    ) -> None:
        self.worker = DeliveryWorker(db, settings, f"{node}:{os.getpid()}")
        self.runner = AlertRunner(db, settings, holders, on_notices=self.worker.poke)
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self.runner.run(self._stop), name="alerts-evaluate"),
            asyncio.create_task(self.worker.run(self._stop), name="alerts-deliver"),
        ]

    async def aclose(self) -> None:
        self._stop.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
