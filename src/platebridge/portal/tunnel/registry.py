"""Which portal process holds which POD's tunnel.

Two implementations of one small interface:

* :class:`MemoryRegistry` — one portal process (no ``PLATEBRIDGE_REDIS_URL``): the process
  holds every tunnel there is.
* :class:`RedisRegistry` — many processes behind a load balancer. Keys (with TTLs, so a
  crashed process's entries vanish on their own)::

      pb:tunnel:pod:{pod uuid}   → node id          (TTL ``ttl``, refreshed while connected)
      pb:tunnel:node:{node id}   → internal base URL (TTL ``ttl``, refreshed while running)

  A new tunnel *overwrites* the pod key (the newest connection wins); refresh and release are
  compare-and-set scripts, so a process never extends or deletes another process's claim.
  ``refresh`` answers False only when *another* node holds the pod (its tunnel is then stale);
  a missing key (Redis restarted) is simply claimed again.
"""

from __future__ import annotations

import uuid
from typing import Any, Protocol

POD_KEY = "pb:tunnel:pod:{}"
NODE_KEY = "pb:tunnel:node:{}"

_REFRESH = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  return redis.call('EXPIRE', KEYS[1], ARGV[2])
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class Registry(Protocol):
    async def announce(self, node_id: str, url: str | None) -> None: ...

    async def claim(self, pod: uuid.UUID, node_id: str) -> None: ...

    async def refresh(self, pod: uuid.UUID, node_id: str) -> bool: ...

    async def release(self, pod: uuid.UUID, node_id: str) -> None: ...

    async def holders(self, pods: list[uuid.UUID]) -> dict[uuid.UUID, str]: ...

    async def node_url(self, node_id: str) -> str | None: ...

    async def aclose(self) -> None: ...


class MemoryRegistry:
    """A single process: claims live in a dict."""

    def __init__(self) -> None:
        self._pods: dict[uuid.UUID, str] = {}
        self._nodes: dict[str, str] = {}

    async def announce(self, node_id: str, url: str | None) -> None:
        if url:
            self._nodes[node_id] = url

    async def claim(self, pod: uuid.UUID, node_id: str) -> None:
        self._pods[pod] = node_id

    async def refresh(self, pod: uuid.UUID, node_id: str) -> bool:
        return self._pods.setdefault(pod, node_id) == node_id

    async def release(self, pod: uuid.UUID, node_id: str) -> None:
        if self._pods.get(pod) == node_id:
            del self._pods[pod]

    async def holders(self, pods: list[uuid.UUID]) -> dict[uuid.UUID, str]:
        return {p: self._pods[p] for p in pods if p in self._pods}

    async def node_url(self, node_id: str) -> str | None:
        return self._nodes.get(node_id)

    async def aclose(self) -> None:
        return None


class RedisRegistry:
    """The registry in Redis (``redis.asyncio``); see the module docstring for the keys."""

    def __init__(self, client: Any, ttl: int) -> None:
        self._redis = client
        self.ttl = ttl
        self._refresh = client.register_script(_REFRESH)
        self._release = client.register_script(_RELEASE)

    @classmethod
    def from_url(cls, url: str, ttl: int) -> RedisRegistry:
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(
            url, decode_responses=True, socket_timeout=2, socket_connect_timeout=2
        )
        return cls(client, ttl)

    async def announce(self, node_id: str, url: str | None) -> None:
        if url:
            await self._redis.set(NODE_KEY.format(node_id), url, ex=self.ttl)

    async def claim(self, pod: uuid.UUID, node_id: str) -> None:
        await self._redis.set(POD_KEY.format(pod), node_id, ex=self.ttl)

    async def refresh(self, pod: uuid.UUID, node_id: str) -> bool:
        done = await self._refresh(keys=[POD_KEY.format(pod)], args=[node_id, self.ttl])
        return bool(done)

    async def release(self, pod: uuid.UUID, node_id: str) -> None:
        await self._release(keys=[POD_KEY.format(pod)], args=[node_id])

    async def holders(self, pods: list[uuid.UUID]) -> dict[uuid.UUID, str]:
        if not pods:
            return {}
        values = await self._redis.mget([POD_KEY.format(p) for p in pods])
        return {p: v for p, v in zip(pods, values, strict=True) if v}

    async def node_url(self, node_id: str) -> str | None:
        value = await self._redis.get(NODE_KEY.format(node_id))
        return str(value) if value else None

    async def aclose(self) -> None:
        await self._redis.aclose()
