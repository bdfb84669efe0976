"""Effective (read-time) status: no background job is needed to turn a silent pod offline."""

from __future__ import annotations

from datetime import datetime, timedelta

from platebridge.portal.models import utcnow


def effective_pod_status(
    reported: str, last_heartbeat: datetime | None, offline_after: int, now: datetime | None = None
) -> str:
    """'offline' when the last heartbeat is missing or older than ``offline_after`` seconds,
    else what the POD reported."""
    if last_heartbeat is None:
        return "offline"
    if (now or utcnow()) - last_heartbeat > timedelta(seconds=offline_after):
        return "offline"
    return reported if reported in ("online", "error", "offline") else "online"


def camera_streamable(camera_status: str, pod_status: str) -> bool:
    return camera_status == "active" and pod_status == "online"
