"""Playback from a recorded file: which bytes answer ``/media?start&duration``, and the
``tfdt`` rewrite that starts the body's media timeline at 0. Pure (no I/O).

A body is the file's init segment (``ftyp`` + ``moov``) and a run of its whole fragments: from
the **keyframe fragment at or before** ``start`` (never one before the token's range: then the
first keyframe in it) up to the wanted end, rounded up to the next keyframe fragment, and
never past the file's indexed size (a growing file is indexed up to its last whole fragment).

Wall clock: the index holds the wall time of each keyframe fragment; the scanned fragments
hold media times. Their difference at the file's first keyframe is the file's media→wall
offset (the one the index used), so a fragment's wall time is its media time + that offset.

``tfdt`` rewrite: each track's ``baseMediaDecodeTime`` is reduced by that track's decode time
in the body's first fragment that carries the track, so every track starts at 0 and media time
``t`` of the body is wall time ``Media-Start + t``. The boxes keep their size (a version-0
``tfdt`` only gets smaller), so ``trun`` data offsets stay valid.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from platebridge.core.bmff import Fmp4Error, child, children, u32
from platebridge.pod.recording.index import RecordedFile
from platebridge.pod.recording.mp4scan import ScannedFragment

#: Times closer than this are the same instant (the index rounds to the millisecond).
EPSILON = 0.002


@dataclass(frozen=True)
class MediaPlan:
    """What to send: ``path``'s bytes ``[0, init_size)`` then ``[first, end)``."""

    file: RecordedFile
    first: int  # byte offset of the first fragment (its prft/moof)
    end: int  # just after the last fragment's mdat
    media_start: float  # wall time of the body's first frame
    media_end: float  # wall time where the body ends
    #: The body ends with the file's last indexed fragment.
    file_end: bool


def wall_offset(file: RecordedFile, fragments: Sequence[ScannedFragment]) -> float | None:
    """wall = media + offset for ``file`` (module doc); None when the scan does not match."""
    if not file.keyframes:
        return None
    kf_time, kf_offset = file.keyframes[0]
    for frag in fragments:
        if frag.offset == kf_offset:
            return kf_time - frag.media_start
    return None


def plan_media(
    file: RecordedFile,
    fragments: Sequence[ScannedFragment],
    start: float,
    until: float,
    not_before: float | None = None,
    not_after: float | None = None,
) -> MediaPlan | None:
    """The body for wall times ``[start, until)`` from ``file`` (module doc), or None when the
    file has no keyframe fragment to start from (in range and within its indexed size).

    The body goes on past ``until`` to just before the next keyframe fragment (at most one GOP
    more; never a fragment starting at or after ``not_after``): the next body, asked from its
    end, then starts exactly there — chunks follow each other without overlap."""
    found = wall_offset(file, fragments)
    if found is None:
        return None
    offset: float = found
    frags = [f for f in fragments if f.end <= file.size]

    def wall(i: int) -> float:
        return frags[i].media_start + offset

    keys = [i for i, f in enumerate(frags) if f.keyframe]
    if not_before is not None:
        keys = [i for i in keys if wall(i) >= not_before - EPSILON]
    if not keys:
        return None
    at_or_before = [i for i in keys if wall(i) <= start + EPSILON]
    first = at_or_before[-1] if at_or_before else keys[0]
    last = first
    stop = max(until, wall(first) + EPSILON)
    while last + 1 < len(frags) and wall(last + 1) < stop - EPSILON:
        last += 1
    ceiling = math.inf if not_after is None else not_after - EPSILON
    while last + 1 < len(frags) and not frags[last + 1].keyframe and wall(last + 1) < ceiling:
        last += 1
    end_frag = frags[last]
    return MediaPlan(
        file=file,
        first=frags[first].offset,
        end=end_frag.end,
        media_start=round(wall(first), 3),
        media_end=round(end_frag.media_start + end_frag.media_duration + offset, 3),
        file_end=last == len(frags) - 1,
    )


# --- the tfdt rewrite -------------------------------------------------------------------------


def _tfdts(moof: bytes) -> list[tuple[int, int, int]]:
    """(track id, tfdt payload offset, decode time) of every ``traf`` of a ``moof`` box."""
    out: list[tuple[int, int, int]] = []
    for traf in children(moof, 8, len(moof), "traf"):
        tfhd = child(moof, *traf, "tfhd")
        tfdt = child(moof, *traf, "tfdt")
        if tfhd is None:
            raise Fmp4Error("traf without tfhd")
        if tfdt is None:
            continue
        track = u32(moof, tfhd[0] + 4, tfhd[1])
        body, end = tfdt
        if moof[body] == 1:
            if body + 12 > end:
                raise Fmp4Error("tfdt is truncated")
            (value,) = struct.unpack_from(">Q", moof, body + 4)
        else:
            value = u32(moof, body + 4, end)
        out.append((track, body, value))
    return out


def decode_times(moof: bytes) -> dict[int, int]:
    """Each track's ``baseMediaDecodeTime`` in a ``moof`` box (in its timescale)."""
    return {track: value for track, _, value in _tfdts(moof)}


class Rebaser:
    """Rewrites the ``tfdt`` of successive ``moof`` boxes so each track starts at 0."""

    def __init__(self) -> None:
        self.bases: dict[int, int] = {}

    def moof(self, moof: bytes) -> bytes:
        out = bytearray(moof)
        for track, body, value in _tfdts(moof):
            base = self.bases.setdefault(track, value)
            new = max(0, value - base)
            if moof[body] == 1:
                struct.pack_into(">Q", out, body + 4, new)
            else:
                struct.pack_into(">I", out, body + 4, new)
        return bytes(out)
