"""The audit rows the streaming path writes: ``token_issued`` and ``stream_started``."""

from __future__ import annotations

from platebridge.portal.db import Database
from platebridge.portal.models import User, utcnow
from platebridge.portal.services import audit
from platebridge.portal.streaming.access_cache import Access
from platebridge.portal.streaming.state import StreamingState


async def record_tokens_issued(
    db: Database, user: User, issued: list[tuple[str, str]], ip: str | None
) -> None:
    """One ``token_issued`` row (method ``direct``) per ``(pod_id, camera_id)`` in ``issued``."""
    if not issued:
        return
    async with db.write() as session:
        for pod_id, camera_id in issued:
            session.add(
                audit.new_event(
                    user,
                    pod_id=pod_id,
                    camera_id=camera_id,
                    action="token_issued",
                    method="direct",
                    client_ip=ip,
                )
            )


async def record_stream_started(
    db: Database,
    access: Access,
    state: StreamingState,
    ip: str | None,
    method: audit.Method = "proxy",
) -> bool:
    """Write ``stream_started`` when this playlist fetch begins a new viewing."""
    key = (str(access.user.id), str(access.pod.id), access.camera.camera_id, ip or "")
    if not state.viewings.starts_viewing(key):
        return False
    async with db.write() as session:
        session.add(
            audit.new_event(
                access.user,
                pod_id=access.pod.pod_id,
                camera_id=access.camera.camera_id,
                action="stream_started",
                method=method,
                client_ip=ip,
                at=utcnow(),
            )
        )
    return True
