"""The audit rows the streaming path writes: ``token_issued``, ``stream_started``, and for
recorded video ``footage_view`` and ``footage_export``."""

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


async def record_footage(
    db: Database,
    access: Access,
    action: audit.Action,
    method: audit.Method,
    ip: str | None,
    range_: tuple[float, float],
) -> None:
    """One ``footage_view`` / ``footage_export`` row for ``access`` and the range."""
    async with db.write() as session:
        session.add(
            audit.new_event(
                access.user,
                pod_id=access.pod.pod_id,
                camera_id=access.camera.camera_id,
                action=action,
                method=method,
                client_ip=ip,
                range_=range_,
            )
        )


async def record_footage_viewing(
    db: Database,
    access: Access,
    state: StreamingState,
    ip: str | None,
    method: audit.Method,
    range_: tuple[float, float],
) -> bool:
    """``footage_view`` when this relayed media request begins a new viewing of a session
    viewer (a footage token's viewing was recorded when the token was issued)."""
    if access.scope is not None:
        return False
    key = ("footage", str(access.user.id), str(access.pod.id), access.camera.camera_id, ip or "")
    if not state.viewings.starts_viewing(key):
        return False
    await record_footage(db, access, "footage_view", method, ip, range_)
    return True
