"""Rewrite ffmpeg's playlist so every segment URI carries the viewer's token forward."""

from __future__ import annotations

from urllib.parse import quote

from platebridge.pod.ffmpeg import SEGMENT_NAME


def rewrite_playlist(text: str, camera_id: str, token: str) -> str:
    """Segment lines become ``stream/{camera_id}/{segment}?token=…``.

    The URI is relative to ``/stream`` (so it resolves to ``/stream/{camera_id}/{segment}``)
    and works unchanged behind any prefix that keeps the last path element. Lines that are not
    plain segment names are dropped rather than passed through.
    """
    quoted_cam = quote(camera_id, safe="")
    quoted_token = quote(token, safe="")
    out: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            out.append(stripped)
        elif SEGMENT_NAME.match(stripped):
            out.append(f"stream/{quoted_cam}/{stripped}?token={quoted_token}")
    return "\n".join(out) + "\n"


def newest_segment(text: str) -> str | None:
    names = [ln.strip() for ln in text.splitlines() if SEGMENT_NAME.match(ln.strip())]
    return names[-1] if names else None
