"""A granted viewing (:class:`Access`) and the process's memory of them (:class:`AccessCache`)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from platebridge.core.tokens import Scope
from platebridge.portal.models import Camera, Pod, User

#: ``(session token, stream token, pod_id, camera_id)``: the exact credential and target.
AccessKey = tuple[str | None, str | None, str, str]


@dataclass(frozen=True, slots=True)
class Access:
    """A request allowed to watch ``camera`` of ``pod``; ``token`` when a stream token did it
    (or came along with the session). ``scope``: the verified token's scope when the token
    authorised (None: the session did); ``footage``: a footage token's range (epoch s)."""

    user: User
    pod: Pod
    camera: Camera
    token: str | None
    scope: Scope | None = None
    footage: tuple[int, int] | None = None


class AccessCache:
    """Recent ``authorize_stream`` answers, per process, for ``ttl`` seconds at most.

    A player fetches the playlist every second and a segment right after it: checking the
    session (or the stream token's user) and the tenant-scoped camera in the database for every
    one of them was most of the proxy's per-request cost. Only successes are remembered, keyed
    by the exact credential (session token or stream token) and pod and camera; an entry never
    outlives its stream token's ``exp``. Staleness bound: for ``ttl`` seconds after a change in
    the database, a revoked or expired session, a deleted camera or user, a changed pod address
    or mode, or a pod gone offline may still be served as before, by this process. A request
    whose POD fails (any ``UpstreamError`` on the streaming path) drops the pod's entries at
    once, so a dead POD's viewers see ``pod_offline`` as soon as the database says so.
    """

    def __init__(self, ttl: float, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[AccessKey, tuple[Access, float]] = {}
        #: One database check per key at a time: 50 viewers whose entry expired together
        #: wait for the first one's answer instead of taking 50 database connections.
        self.inflight: dict[AccessKey, asyncio.Future[Access]] = {}

    def get(self, key: AccessKey) -> Access | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[1] <= time.monotonic():
            del self._entries[key]
            return None
        return entry[0]

    def put(self, key: AccessKey, access: Access, not_after: float) -> None:
        """Remember ``access`` for ``ttl`` seconds, never past ``not_after`` (wall clock)."""
        if self.ttl <= 0:
            return
        now = time.monotonic()
        lifetime = min(self.ttl, not_after - time.time())
        if lifetime <= 0:
            return
        if len(self._entries) >= self.max_entries:
            self._entries = {k: v for k, v in self._entries.items() if v[1] > now}
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
        self._entries[key] = (access, now + lifetime)

    def forget_pod(self, pod_id: str) -> None:
        """Drop every entry of ``pod_id`` (its POD failed: the next request re-reads its row)."""
        for key in [k for k in self._entries if k[2] == pod_id]:
            self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()
