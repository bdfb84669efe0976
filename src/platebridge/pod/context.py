"""What the agent's routes need, reached through one dependency (``Context``).

Built once by :func:`platebridge.pod.http.create_app`; shared by the HLS routes
(:mod:`platebridge.pod.http`) and the live routes (:mod:`platebridge.pod.live_routes`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from platebridge.core.errors import PlateBridgeError
from platebridge.core.tokens import Scope, StreamClaims, TokenError, verify_stream_token
from platebridge.pod.config import PodConfig
from platebridge.pod.ffmpeg import PLAYLIST_NAME, camera_dir
from platebridge.pod.playlist import newest_segment
from platebridge.pod.snapshot import Snapshotter
from platebridge.pod.supervisor import CameraState

ApiError = PlateBridgeError  # the POD raises the one error type of core


@dataclass(frozen=True)
class PodContext:
    """What the routes need, built once by :func:`create_app` (cameras: live, read-only)."""

    config: PodConfig
    cameras: Mapping[str, CameraState]
    secret: str
    started: float
    snapshotter: Snapshotter
    tunnel_status: Callable[[], dict[str, Any]] | None

    def authorize(self, token: str | None, scope: Scope = "live") -> StreamClaims:
        """The token's claims for a path of ``scope``: the live paths (``/stream…``,
        ``/live…``, ``/snapshot``) refuse footage tokens, the recording paths live tokens."""
        try:
            claims = verify_stream_token(token, self.secret)
        except TokenError as exc:
            raise ApiError(401, f"token_{exc.reason}", exc.message) from None
        if claims.pod_id != self.config.pod_id:
            raise ApiError(403, "wrong_pod", "stream token was issued for another POD")
        if claims.scope != scope:
            raise ApiError(
                403, "wrong_scope", f"this path needs a {scope} token, not {claims.scope}"
            )
        return claims

    def known_camera(self, camera_id: str) -> CameraState:
        state = self.cameras.get(camera_id)
        if state is None:
            raise ApiError(404, "unknown_camera", "this POD has no camera with that id")
        return state

    async def read_playlist(self, state: CameraState) -> str:
        path = camera_dir(self.config, state.camera_id) / PLAYLIST_NAME
        try:
            text = await asyncio.to_thread(path.read_text, "utf-8")
        except (OSError, UnicodeDecodeError):
            text = ""
        if newest_segment(text) is None:
            raise ApiError(
                503,
                "not_ready",
                f"camera has no video yet (status: {state.status})",
                {"Retry-After": "1"},
            )
        return text


def context(request: Request) -> PodContext:
    ctx: PodContext = request.app.state.pod
    return ctx


Context = Annotated[PodContext, Depends(context)]
