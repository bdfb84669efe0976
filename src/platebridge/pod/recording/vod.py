"""The HLS VOD playlist of a recorded range (the fallback player where MSE is missing). Pure.

fMP4 HLS (version 7) whose URIs are ``media`` requests (relative: ``vod.m3u8`` and ``media``
are siblings under ``/recordings/{camera}``), so they stay on the tunnel's allow-list:

- per recorded file an ``EXT-X-MAP`` (``media?…&part=init``: the file's init segment) and,
  from the second file on, an ``EXT-X-DISCONTINUITY`` (each file has its own timeline);
- segments cut at the file's indexed keyframes, about :data:`TARGET` s each
  (``media?start=<keyframe>&duration=<to the next cut>&part=fragments``: the fragments on the
  file's own timeline), each with its ``EXT-X-PROGRAM-DATE-TIME`` (the wall clock);
- only whole segments inside ``[from, to]`` (the first starts at the first keyframe at or
  after ``from``), so every request lies within a token for that range.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from urllib.parse import quote

from platebridge.pod.recording.index import RecordedFile
from platebridge.pod.recording.playback import EPSILON

TARGET = 6.0
#: The shortest and longest ``duration`` a ``media`` request takes.
MIN_SEGMENT, MAX_SEGMENT = 1.0, 60.0


def segments(file: RecordedFile, start: float, end: float) -> list[tuple[float, float]]:
    """``file``'s keyframe-aligned pieces ``[a, b)`` within ``[start, end]`` (module doc)."""
    cuts = [t for t, _ in file.keyframes if start - EPSILON <= t < file.end - EPSILON]
    if not cuts:
        return []
    out: list[tuple[float, float]] = []
    a = cuts[0]
    for t in cuts[1:]:
        if t - a >= TARGET - EPSILON:
            out.append((a, t))
            a = t
    out.append((a, file.end))
    out = [(a, b) for a, b in out if b <= end + EPSILON]
    if len(out) > 1 and out[-1][1] - out[-1][0] < MIN_SEGMENT:
        (a, _), (_, b) = out[-2], out.pop()
        out[-1] = (a, b)
    return [(a, b) for a, b in out if b - a >= MIN_SEGMENT - EPSILON]


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _uri(start: float, duration: float, part: str, token: str) -> str:
    return f"media?start={start:.3f}&duration={duration:.3f}&part={part}&token={quote(token)}"


def playlist(files: Sequence[RecordedFile], start: float, end: float, token: str) -> str:
    """The playlist of ``files`` (by start) over ``[start, end]`` (module doc)."""
    body: list[str] = []
    longest = MIN_SEGMENT
    for file in files:
        pieces = segments(file, start, end)
        if not pieces:
            continue
        if body:
            body.append("#EXT-X-DISCONTINUITY")
        body.append(f'#EXT-X-MAP:URI="{_uri(pieces[0][0], MIN_SEGMENT, "init", token)}"')
        for a, b in pieces:
            longest = max(longest, b - a)
            duration = min(max(b - a, MIN_SEGMENT), MAX_SEGMENT)
            body.append(f"#EXT-X-PROGRAM-DATE-TIME:{_iso(a)}")
            body.append(f"#EXTINF:{b - a:.3f},")
            body.append(_uri(a, duration, "fragments", token))
    head = ["#EXTM3U", "#EXT-X-VERSION:7", f"#EXT-X-TARGETDURATION:{math.ceil(longest)}"]
    head += ["#EXT-X-PLAYLIST-TYPE:VOD", "#EXT-X-INDEPENDENT-SEGMENTS"]
    return "\n".join([*head, *body, "#EXT-X-ENDLIST", ""])
