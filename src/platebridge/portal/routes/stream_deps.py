"""What every viewer's stream route takes (the live proxy and snapshot, the footage relay): its
parameters, and the one streaming path's first steps (``streaming/path.open_stream``) as a
dependency that needs a capability — ``live``, ``footage`` or ``export``.

The routes are ``@public`` for the app-wide guard because they authorise themselves: by the
user's session *or* by a token in the query (HLS players send neither cookies nor headers).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Path, Query

from platebridge.portal.deps import Db, SessionToken, Settings, Streaming
from platebridge.portal.scoping import Capability
from platebridge.portal.streaming.authorize import authorize_stream
from platebridge.portal.streaming.path import PodStream, open_stream

PodId = Annotated[str, Path(min_length=1, max_length=64)]
CameraParam = Annotated[str | None, Query(max_length=64)]
TokenParam = Annotated[str | None, Query(max_length=2048)]
#: Times stay strings until ``streaming.footage`` parses them: a bad one is 400, not 422.
TimeParam = Annotated[str | None, Query(max_length=32)]
NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def _opener(need: Capability) -> Callable[..., Awaitable[PodStream]]:
    async def open_for(
        db: Db,
        settings: Settings,
        state: Streaming,
        login: SessionToken,
        pod_id: PodId,
        camera_id: CameraParam = None,
        token: TokenParam = None,
    ) -> PodStream:
        return await open_stream(
            authorize=lambda: authorize_stream(
                db, settings, state, pod_id, camera_id, login=login, token=token, need=need
            ),
            state=state,
            settings=settings,
        )

    open_for.__doc__ = f"The one streaming path's first steps, needing ``{need}``."
    return open_for


LiveStream = Annotated[PodStream, Depends(_opener("live"))]
FootageStream = Annotated[PodStream, Depends(_opener("footage"))]
ExportStream = Annotated[PodStream, Depends(_opener("export"))]
