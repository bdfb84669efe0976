"""The one streaming path every stream route goes through (playlist, segment, snapshot, and the
live and recording routes that follow).

:func:`open_stream` authorises the viewer (session or stream token) and refuses an offline pod;
:meth:`PodStream.fetch` then picks the upstream (direct address, VPN address or tunnel), signs the
portal's own POD-side token (a live one, or for recorded footage one for just the range asked),
runs the route's request, forgets the pod's cached authorisation when
the POD fails, and for an ``auto`` pod whose address does not answer falls back to its tunnel once.
So authorisation, fallback and error mapping are the same for every route by construction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import quote

from platebridge.portal.metrics.middleware import note_stream_method
from platebridge.portal.settings import PortalSettings
from platebridge.portal.streaming.access_cache import Access
from platebridge.portal.streaming.authorize import require_online
from platebridge.portal.streaming.relay_errors import UpstreamError
from platebridge.portal.streaming.select import Upstream
from platebridge.portal.streaming.state import StreamingState

T = TypeVar("T")
#: ``request(upstream, token_query)`` → the route's result; ``token_query`` is ``?token=…``.
UpstreamRequest = Callable[[Upstream, str], Awaitable[T]]


@dataclass(frozen=True, slots=True)
class PodStream:
    """An authorised viewer of one camera, ready to reach its POD."""

    access: Access
    state: StreamingState
    settings: PortalSettings

    @property
    def camera_path(self) -> str:
        """The camera id, quoted for a POD URL path."""
        return quote(self.access.camera.camera_id, safe="")

    async def fetch(
        self, request: UpstreamRequest[T], *, footage: tuple[float, float] | None = None
    ) -> tuple[T, Upstream]:
        """Run ``request`` against the pod's upstream; the upstream used comes back with it.
        ``footage``: the recorded range the request reads (the POD-side token covers only it)."""
        pod = self.access.pod
        camera_id = self.access.camera.camera_id
        tokens = self.state.upstream_tokens
        if footage is None:
            token = tokens.for_camera(pod, camera_id, self.settings)
        else:
            token = tokens.footage(pod, camera_id, self.settings, *footage)
        query = f"?token={quote(token, safe='')}"
        up = await self.state.upstream_for(pod)
        try:
            result = await request(up, query)
            note_stream_method(up.method)  # metrics: bytes and viewers by method
            return result, up
        except UpstreamError as exc:
            self.state.access_cache.forget_pod(pod.pod_id)  # re-read the pod's row next time
            if not self.state.upstream_failed(pod, up, exc):
                raise
            first = exc
        up = await self.state.upstream_for(pod)  # the address is now known unreachable
        if up.method == "proxy":
            raise first
        try:
            result = await request(up, query)
            note_stream_method(up.method)
            return result, up
        except UpstreamError:
            self.state.access_cache.forget_pod(pod.pod_id)
            raise


async def open_stream(
    *,
    authorize: Callable[[], Awaitable[Access]],
    state: StreamingState,
    settings: PortalSettings,
) -> PodStream:
    """Authorise (``authorize``) and require the pod online: the first steps of every route."""
    access = await authorize()
    require_online(access.pod, settings)
    return PodStream(access, state, settings)
