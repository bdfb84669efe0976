"""Walk a recorded fragmented MP4 file: its init segment and its whole fragments.

Reads only box headers, the ``moov`` and each ``moof`` (the ``mdat`` payloads are skipped by
seeking), so a 60 s file is scanned in a few milliseconds. A fragment is **whole** when its
``moof`` and the ``mdat`` after it are complete; a file cut by ``kill -9`` or a power loss ends
in a torn fragment (or a torn box header), which :func:`scan_file` reports as ``whole_size`` <
the file's size: the repair truncates the file there.

Wall clock: ffmpeg writes a ``prft`` box (``write_prft=wallclock``) before each ``moof``: an
NTP time and the media time of the fragment's first sample. Measured with the clock camera
(ffmpeg 5.1, stream copy), that NTP time is when the fragment's *first* sample arrived (the
burned-in clock of its first picture + the camera's ~70 ms latency), not when the fragment was
written; fragments written in a burst (the probe's backlog at start) carry later times. So the
file's media→wall offset is the smallest ``ntp - start`` over its fragments (the least delayed
one), which puts keyframe times within a frame or two of their capture
(``tests/pod/test_recording_clock_e2e.py`` checks every keyframe against the picture's clock).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from platebridge.core.bmff import Fmp4Error, box_header, child, children, iter_boxes, u32
from platebridge.core.fmp4 import NON_SYNC

NTP_UNIX_OFFSET = 2_208_988_800
#: A moov or moof larger than this is not something ffmpeg wrote: the file is treated as torn.
MAX_META_BOX = 8 * 1024 * 1024


@dataclass(frozen=True)
class ScannedFragment:
    offset: int  # of its first box (the prft, else the moof)
    end: int  # just after its mdat
    keyframe: bool
    media_start: float  # seconds, the video track's decode time (tfdt)
    media_duration: float  # seconds, sum of its video sample durations
    wall: float | None  # prft NTP time as epoch seconds (when ffmpeg wrote it)


@dataclass(frozen=True)
class ScannedFile:
    size: int  # bytes on disk
    init_size: int  # ftyp + moov (0: no whole init segment)
    whole_size: int  # end of the last whole fragment (== size for an intact file)
    fragments: tuple[ScannedFragment, ...]

    def wall_offset(self) -> float | None:
        """wall = media + offset (see the module doc); None without any prft."""
        offsets = [f.wall - f.media_start for f in self.fragments if f.wall]
        return min(offsets) if offsets else None

    def keyframes(self, offset: float) -> tuple[tuple[float, int], ...]:
        return tuple((f.media_start + offset, f.offset) for f in self.fragments if f.keyframe)

    def media_span(self) -> tuple[float, float] | None:
        if not self.fragments:
            return None
        last = self.fragments[-1]
        return self.fragments[0].media_start, last.media_start + last.media_duration


@dataclass
class _Video:
    track_id: int = 0
    timescale: int = 1
    default_duration: int = 0
    default_flags: int = 0


def _moov_video(moov: bytes) -> _Video:
    video = _Video()
    for trak in children(moov, 8, len(moov), "trak"):
        mdia = child(moov, *trak, "mdia")
        hdlr = child(moov, *mdia, "hdlr") if mdia else None
        if mdia is None or hdlr is None or moov[hdlr[0] + 8 : hdlr[0] + 12] != b"vide":
            continue
        tkhd = child(moov, *trak, "tkhd")
        mdhd = child(moov, *mdia, "mdhd")
        if tkhd is None or mdhd is None:
            continue
        v1 = moov[tkhd[0]] == 1
        video.track_id = u32(moov, tkhd[0] + (20 if v1 else 12), tkhd[1])
        v1 = moov[mdhd[0]] == 1
        video.timescale = u32(moov, mdhd[0] + (20 if v1 else 12), mdhd[1]) or 1
        break
    mvex = child(moov, 8, len(moov), "mvex")
    for body, end in children(moov, *mvex, "trex") if mvex else []:
        if u32(moov, body + 4, end) == video.track_id:
            video.default_duration = u32(moov, body + 12, end)
            video.default_flags = u32(moov, body + 20, end)
    return video


def _traf(moof: bytes, video: _Video) -> tuple[float, float, bool] | None:
    """(decode time s, duration s, starts with a sync sample) of the video track's run."""
    for traf in children(moof, 8, len(moof), "traf"):
        tfhd = child(moof, *traf, "tfhd")
        if tfhd is None or u32(moof, tfhd[0] + 4, tfhd[1]) != video.track_id:
            continue
        flags = u32(moof, tfhd[0], tfhd[1]) & 0xFFFFFF
        pos = tfhd[0] + 8 + (8 if flags & 0x01 else 0) + (4 if flags & 0x02 else 0)
        duration = video.default_duration
        sample_flags = video.default_flags
        if flags & 0x08:
            duration = u32(moof, pos, tfhd[1])
            pos += 4
        pos += 4 if flags & 0x10 else 0
        if flags & 0x20:
            sample_flags = u32(moof, pos, tfhd[1])
        tfdt = child(moof, *traf, "tfdt")
        decode = 0
        if tfdt is not None:
            if moof[tfdt[0]] == 1:
                (decode,) = struct.unpack_from(">Q", moof, tfdt[0] + 4)
            else:
                decode = u32(moof, tfdt[0] + 4, tfdt[1])
        total, first_flags = 0, None
        for body, end in children(moof, *traf, "trun"):
            tflags = u32(moof, body, end) & 0xFFFFFF
            count = u32(moof, body + 4, end)
            pos = body + 8 + (4 if tflags & 0x01 else 0)
            if tflags & 0x04:
                first_flags = u32(moof, pos, end) if first_flags is None else first_flags
                pos += 4
            fields = [f for f in (0x100, 0x200, 0x400, 0x800) if tflags & f]
            for i in range(count):
                for f in fields:
                    value = u32(moof, pos, end)
                    pos += 4
                    if f == 0x100:
                        total += value
                    elif f == 0x400 and first_flags is None and i == 0:
                        first_flags = value
                if 0x100 not in fields:
                    total += duration
        if first_flags is None:
            first_flags = sample_flags
        scale = video.timescale
        return decode / scale, total / scale, not first_flags & NON_SYNC
    return None


def _prft(box: bytes) -> float | None:
    if len(box) < 28:
        return None
    (ntp,) = struct.unpack_from(">Q", box, 16)
    seconds, fraction = ntp >> 32, ntp & 0xFFFFFFFF
    return seconds - NTP_UNIX_OFFSET + fraction / 2**32 if seconds else None


def _read(f: BinaryIO, pos: int, n: int) -> bytes:
    f.seek(pos)
    return f.read(n)


def scan(f: BinaryIO, size: int) -> ScannedFile:
    """Scan an open file of ``size`` bytes (see the module doc)."""
    pos, init_size, whole = 0, 0, 0
    video: _Video | None = None
    fragments: list[ScannedFragment] = []
    frag_start: int | None = None
    wall: float | None = None
    pending: tuple[float, float, bool] | None = None
    while pos < size:
        head_bytes = _read(f, pos, 16)
        try:
            head = box_header(head_bytes, 0, len(head_bytes))
        except Fmp4Error:
            break
        if head is None or pos + head[2] > size:
            break  # torn box
        kind, _, box_size = head
        if kind in ("moov", "moof", "prft") and box_size > MAX_META_BOX:
            break
        if kind == "moov":
            try:
                video = _moov_video(_read(f, pos, box_size))
            except Fmp4Error:
                break
            init_size = whole = pos + box_size
        elif video is None:
            pass  # ftyp, free
        elif kind == "prft":
            frag_start, wall = pos, _prft(_read(f, pos, box_size))
        elif kind == "moof":
            try:
                pending = _traf(_read(f, pos, box_size), video)
                list(iter_boxes(_read(f, pos, box_size), 8))  # the moof's children fit
            except Fmp4Error:
                break
            frag_start = pos if frag_start is None else frag_start
        elif kind == "mdat" and pending is not None and frag_start is not None:
            media, duration, sync = pending
            end = pos + box_size
            fragments.append(ScannedFragment(frag_start, end, sync, media, duration, wall))
            whole, pending, frag_start, wall = end, None, None, None
        elif pending is None and frag_start is None:
            whole = pos + box_size  # a whole box between fragments (the closing mfra)
        pos += box_size
    return ScannedFile(size, init_size, whole if init_size else 0, tuple(fragments))


def scan_file(path: Path) -> ScannedFile:
    with path.open("rb") as f:
        return scan(f, os.fstat(f.fileno()).st_size)
