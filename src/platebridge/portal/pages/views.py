"""What a page shows of a camera: its badge and a plain-language reason (no spinner)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from platebridge.portal.pages.render import ago

BADGES = ("live", "offline", "error")


@dataclass(frozen=True, slots=True)
class Badge:
    state: str  # live | offline | error
    reason: str


def camera_badge(cam: dict[str, Any]) -> Badge:
    """From a ``listing.list_cameras`` row."""
    if cam["pod_status"] == "offline":
        if cam["last_heartbeat"] is None:
            return Badge("offline", "POD offline: it has never sent a heartbeat")
        return Badge("offline", f"POD offline: last heartbeat {ago(cam['last_heartbeat'])}")
    if cam["pod_status"] == "error":
        return Badge("error", "the POD reports an error")
    if cam["status"] == "error":
        return Badge("error", cam["error"] or "the camera reports an error")
    if cam["status"] == "inactive":
        return Badge("offline", "camera offline: its POD no longer reports it")
    return Badge("live", "")


def with_badges(cameras: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**cam, "badge": camera_badge(cam)} for cam in cameras]
