"""A camera's ``media`` (what it sends, from its POD's heartbeat) as the API and pages show it.

Stored in ``cameras.media`` / ``cameras.sub_media`` as compact JSON of
``core.heartbeat.CameraMedia`` (``services.heartbeat_body.media_json``); listed as an object with
only the fields the POD reported (``schemas.CameraMediaItem``), or null.
"""

from __future__ import annotations

import functools
import json
from typing import Any


@functools.lru_cache(maxsize=4096)
def _parsed(text: str) -> tuple[tuple[str, Any], ...] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return tuple(value.items()) if isinstance(value, dict) else None


def media_item(text: str | None) -> dict[str, Any] | None:
    """The listing's ``media`` object from the stored text (None: not reported, or unreadable).
    Cached by text: an unchanged camera's media is the same text in every listing."""
    if not text:
        return None
    items = _parsed(text)
    return dict(items) if items is not None else None
