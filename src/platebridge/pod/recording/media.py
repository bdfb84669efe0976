"""The ``/media`` body from the index and the files on disk: which file, which bytes, what
comes next; and the body itself, read in chunks (synchronous: run it in a thread).

:func:`prepare` finds the file holding ``start`` (else the first recording after it, within
the token's range), scans it up to its indexed size (box headers and ``moof`` s only) and
plans the body with :func:`platebridge.pod.recording.playback.plan_media`. :func:`body` yields
the init segment, then the planned fragments with their ``tfdt`` (and ``prft`` media time)
rebased to 0 (or one :data:`Part` of that, for HLS); ``mdat`` payloads are copied in
:data:`CHUNK`-sized pieces, never held whole.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Literal

from platebridge.core.bmff import Fmp4Error, box_header, u32
from platebridge.pod.recording.index import RecordedFile, RecordingIndex
from platebridge.pod.recording.mp4scan import MAX_META_BOX, scan
from platebridge.pod.recording.playback import EPSILON, MediaPlan, Rebaser, plan_media

CHUNK = 64 * 1024
#: What of the body to send: all of it (the MSE player), or for the HLS VOD playlist its init
#: segment alone, or its fragments alone on the file's own timeline (not rebased: the
#: segments of one file then follow each other as HLS wants).
Part = Literal["all", "init", "fragments"]
#: The first window searched for "the next recording" (then doubled, up to the limit).
FIRST_WINDOW = 600.0


@dataclass(frozen=True)
class Media:
    plan: MediaPlan
    #: The ``start`` to ask for next (None: nothing more is recorded yet, or not in range).
    next: float | None
    #: The body reaches the newest recorded fragment of the camera.
    live_edge: bool
    part: Part = "all"

    @property
    def length(self) -> int:
        init = self.plan.file.init_size if self.part != "fragments" else 0
        return init + (self.plan.end - self.plan.first if self.part != "init" else 0)


def first_recording(
    index: RecordingIndex, camera_id: str, after: float, until: float
) -> float | None:
    """Start of the first recorded span in ``[after, until)``: windows growing from
    :data:`FIRST_WINDOW`, so a near answer never reads a week of rows."""
    lo, width = after, FIRST_WINDOW
    while lo < until:
        hi = min(until, lo + width)
        for span in index.spans(camera_id, lo, hi):
            if span.kind == "recording":
                return span.start
        lo, width = hi, width * 2
    return None


def locate(
    index: RecordingIndex, camera_id: str, start: float, until: float
) -> RecordedFile | None:
    """The file holding ``start``, else the first one starting before ``until``."""
    files = index.files(camera_id, start, start + EPSILON)
    if files:
        return files[-1]  # two files at one instant: the newer one holds it
    begin = first_recording(index, camera_id, start, until)
    if begin is None:
        return None
    files = index.files(camera_id, begin, begin + EPSILON)
    return files[0] if files else None


def prepare(
    index: RecordingIndex,
    camera_id: str,
    start: float,
    duration: float,
    allowed: tuple[float, float],
    now: float,
) -> Media | None:
    """The body for ``/media?start&duration`` under a token for ``allowed`` (module doc), or
    None when nothing is recorded at or after ``start`` (within ``allowed``)."""
    lo, hi = allowed
    file = locate(index, camera_id, start, hi)
    if file is None:
        return None
    try:
        with file.path.open("rb") as f:
            scanned = scan(f, file.size)
    except OSError:
        return None  # deleted by retention just now
    until = min(max(start, file.start) + duration, hi)
    plan = plan_media(file, scanned.fragments, start, until, not_before=lo, not_after=hi)
    if plan is None:
        return None
    if not plan.file_end:  # more of this file (Next only where the token reaches)
        return Media(plan, plan.media_end if plan.media_end < hi else None, False)
    later = first_recording(index, camera_id, file.end, max(now, hi))
    following = later if later is not None and later < hi else None
    nxt = max(plan.media_end, following) if following is not None else None
    return Media(plan, nxt, later is None)


def _read(f: BinaryIO, pos: int, n: int) -> bytes:
    f.seek(pos)
    data = f.read(n)
    if len(data) != n:
        raise Fmp4Error(f"file ends at {pos + len(data)}, {n} bytes expected")
    return data


def _rebase_prft(prft: bytes, rebaser: Rebaser) -> bytes:
    """The ``prft``'s media time on the rebased timeline of its reference track."""
    if len(prft) < 24:
        return prft
    track = u32(prft, 12, len(prft))
    base = rebaser.bases.get(track)
    if base is None:
        return prft
    out = bytearray(prft)
    if prft[8] == 1 and len(prft) >= 32:
        (value,) = struct.unpack_from(">Q", prft, 24)
        struct.pack_into(">Q", out, 24, max(0, value - base))
    elif prft[8] == 0 and len(prft) >= 28:
        struct.pack_into(">I", out, 24, max(0, u32(prft, 24, len(prft)) - base))
    return bytes(out)


def body(media: Media) -> Iterator[bytes]:
    """The response body of :func:`prepare`'s plan (module doc); stops short (the client sees
    a truncated body) if the file changed under it."""
    plan = media.plan
    rebaser = Rebaser()
    rebase = media.part == "all"
    with plan.file.path.open("rb") as f:
        if media.part != "fragments":
            yield _read(f, 0, plan.file.init_size)
        if media.part == "init":
            return
        pos, held = plan.first, b""
        while pos < plan.end:
            head = box_header(_read(f, pos, min(16, plan.end - pos)), 0, min(16, plan.end - pos))
            if head is None or pos + head[2] > plan.end:
                raise Fmp4Error(f"torn box at {pos}")
            kind, _, size = head
            if kind in ("moof", "prft") and size > MAX_META_BOX:
                raise Fmp4Error(f"{kind} of {size} bytes at {pos}")
            if kind == "prft":
                held = _read(f, pos, size)
            elif kind == "moof":
                moof = _read(f, pos, size)
                if rebase:
                    moof, held = rebaser.moof(moof), _rebase_prft(held, rebaser) if held else b""
                yield held + moof
                held = b""
            else:
                if held:
                    yield held
                    held = b""
                for at in range(pos, pos + size, CHUNK):
                    yield _read(f, at, min(CHUNK, pos + size - at))
            pos += size
