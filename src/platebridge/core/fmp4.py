"""Fragmented MP4 (ISO BMFF) as a live byte stream: boxes, init segment, fragments, codecs.

Pure (no I/O), used by the POD (ffmpeg's stdout) and the portal (the POD's ``/live`` body):

- :class:`BoxReader` cuts a byte stream into top-level boxes, incrementally;
- :class:`Splitter` groups them into an :class:`InitSegment` (``ftyp`` + ``moov``) and
  :class:`Fragment` s (optional ``styp``/``prft``/``sidx``/``emsg`` + ``moof`` + ``mdat``), and
  tells whether a fragment starts with a video sync sample (a **keyframe fragment**);
- :func:`codecs_from_init` gives the RFC 6381 codecs string a player passes to
  ``MediaSource.isTypeSupported``.

Every malformed input raises :class:`Fmp4Error` with a sentence saying what is wrong.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from platebridge.core.bmff import (
    MAX_BOX_SIZE,
    Box,
    BoxReader,
    Fmp4Error,
    iter_boxes,
)
from platebridge.core.bmff import child as _child
from platebridge.core.bmff import children as _children
from platebridge.core.bmff import u32 as _u32

#: Boxes that may precede a ``moof`` and belong to its fragment.
FRAGMENT_PREFIX = frozenset({"styp", "prft", "sidx", "emsg", "free", "skip"})
#: ``sample_is_non_sync_sample`` in ISO/IEC 14496-12 sample flags.
NON_SYNC = 0x0001_0000


@dataclass(frozen=True)
class InitSegment:
    data: bytes


@dataclass(frozen=True)
class Fragment:
    data: bytes
    keyframe: bool


@dataclass
class _Tracks:
    """What fragment parsing needs from the ``moov``: video track ids and trex sample flags."""

    video: set[int] = field(default_factory=set)
    default_flags: dict[int, int] = field(default_factory=dict)


def _track_id(data: bytes, body: int, end: int) -> int:
    version = data[body]
    return _u32(data, body + (20 if version == 1 else 12), end)


def _handler(data: bytes, trak: tuple[int, int]) -> str:
    mdia = _child(data, *trak, "mdia")
    hdlr = _child(data, *mdia, "hdlr") if mdia else None
    if hdlr is None or hdlr[0] + 12 > hdlr[1]:
        return ""
    return data[hdlr[0] + 8 : hdlr[0] + 12].decode("latin-1")


def _moov_tracks(moov: bytes) -> _Tracks:
    tracks = _Tracks()
    for trak in _children(moov, 8, len(moov), "trak"):
        tkhd = _child(moov, *trak, "tkhd")
        if tkhd is not None and _handler(moov, trak) == "vide":
            tracks.video.add(_track_id(moov, *tkhd))
    mvex = _child(moov, 8, len(moov), "mvex")
    for body, end in _children(moov, *mvex, "trex") if mvex else []:
        tracks.default_flags[_u32(moov, body + 4, end)] = _u32(moov, body + 20, end)
    return tracks


def _first_sample_sync(data: bytes, traf: tuple[int, int], trex_flags: int | None) -> bool | None:
    """Whether the traf's first sample is a sync sample; None when it has no samples."""
    tfhd = _child(data, *traf, "tfhd")
    if tfhd is None:
        raise Fmp4Error("traf without tfhd")
    body, end = tfhd
    tf_flags = int.from_bytes(data[body + 1 : body + 4], "big")
    default = trex_flags
    pos = body + 8
    for bit, width in ((0x1, 8), (0x2, 4), (0x8, 4), (0x10, 4)):
        pos += width if tf_flags & bit else 0
    if tf_flags & 0x20:
        default = _u32(data, pos, end)
    for body, end in _children(data, *traf, "trun"):
        tr_flags = int.from_bytes(data[body + 1 : body + 4], "big")
        if _u32(data, body + 4, end) == 0:
            continue
        pos = body + 8 + (4 if tr_flags & 0x1 else 0)
        if tr_flags & 0x4:
            flags: int | None = _u32(data, pos, end)
        elif tr_flags & 0x400:
            pos += 4 * (bool(tr_flags & 0x100) + bool(tr_flags & 0x200))
            flags = _u32(data, pos, end)
        else:
            flags = default
        # No flags anywhere (trex is mandatory, so a broken muxer): treat as sync like stss-less.
        return flags is None or not flags & NON_SYNC
    return None


def fragment_is_keyframe(moof: bytes, tracks: _Tracks | None = None) -> bool:
    """True when the first sample of the fragment's video track is a sync sample."""
    tracks = tracks or _Tracks()
    sync: bool | None = None
    for traf in _children(moof, 8, len(moof), "traf"):
        tfhd = _child(moof, *traf, "tfhd")
        if tfhd is None:
            raise Fmp4Error("traf without tfhd")
        track = _u32(moof, tfhd[0] + 4, tfhd[1])
        if tracks.video and track not in tracks.video:
            continue
        first = _first_sample_sync(moof, traf, tracks.default_flags.get(track))
        if first is not None:
            sync = first if sync is None else sync and first
    return bool(sync)


class Splitter:
    """Incremental: ``feed(chunk)`` returns the init segments and fragments completed by it.

    A new ``ftyp``/``moov`` after fragments (the muxer restarted) yields a new init segment.
    A trailing ``mfra`` (ffmpeg's end of file) and ``free`` boxes outside fragments are dropped.
    """

    def __init__(self) -> None:
        self.reader = BoxReader()
        self.init: InitSegment | None = None
        self._tracks = _Tracks()
        self._pending: list[Box] = []
        self._in_init = True

    def feed(self, chunk: bytes) -> list[InitSegment | Fragment]:
        out: list[InitSegment | Fragment] = []
        for box in self.reader.feed(chunk):
            try:
                item = self._box(box)
            except (IndexError, struct.error) as exc:
                raise Fmp4Error(f"malformed {box.type!r} box ({exc})") from exc
            if item is not None:
                out.append(item)
        return out

    def _box(self, box: Box) -> InitSegment | Fragment | None:
        kind = box.type
        if kind == "ftyp":
            self._in_init, self._pending = True, [box]
        elif kind == "moov":
            data = b"".join(b.data for b in self._pending if b.type == "ftyp") + box.data
            self._tracks = _moov_tracks(box.data)
            self.init, self._in_init, self._pending = InitSegment(data), False, []
            return self.init
        elif self._in_init:
            if kind in ("moof", "mdat"):
                raise Fmp4Error(f"{kind!r} before the init segment (ftyp + moov)")
            self._pending.append(box)
        elif kind in FRAGMENT_PREFIX or kind == "moof":
            if any(b.type == "moof" for b in self._pending):
                raise Fmp4Error(f"{kind!r} after a moof, before its mdat")
            self._pending.append(box)
        elif kind == "mdat":
            moof = next((b for b in self._pending if b.type == "moof"), None)
            if moof is None:
                raise Fmp4Error("'mdat' without a 'moof' before it")
            data = b"".join(b.data for b in self._pending) + box.data
            self._pending = []
            return Fragment(data, fragment_is_keyframe(moof.data, self._tracks))
        return None


@dataclass(frozen=True)
class Split:
    init: InitSegment | None
    fragments: list[Fragment]


def split(data: bytes) -> Split:
    """A whole buffer at once: its (last) init segment and its fragments; must end on a box."""
    splitter = Splitter()
    fragments = [x for x in splitter.feed(data) if isinstance(x, Fragment)]
    if splitter.reader.buffered:
        raise Fmp4Error(f"{splitter.reader.buffered} trailing bytes are not a whole box")
    return Split(splitter.init, fragments)


# --- codecs string (RFC 6381) -----------------------------------------------------------------

#: Bytes before the child boxes of a visual / audio (version 0) sample entry.
_VISUAL_ENTRY = 78
_AUDIO_ENTRY = 28


def _stsd_entries(data: bytes, trak: tuple[int, int]) -> list[tuple[str, int, int]]:
    path = _child(data, *trak, "mdia")
    for name in ("minf", "stbl", "stsd"):
        path = _child(data, *path, name) if path else None
    if path is None:
        return []
    return list(iter_boxes(data, path[0] + 8, path[1]))


def _avc(entry: str, data: bytes, body: int, end: int) -> str:
    conf = _child(data, body + _VISUAL_ENTRY, end, "avcC")
    if conf is None or conf[0] + 4 > conf[1]:
        raise Fmp4Error(f"sample entry {entry!r} has no usable avcC box")
    profile, compat, level = data[conf[0] + 1 : conf[0] + 4]
    return f"{entry}.{profile:02x}{compat:02x}{level:02x}"


def _reverse32(value: int) -> int:
    return int(f"{value:032b}"[::-1], 2)


def _hevc(entry: str, data: bytes, body: int, end: int) -> str:
    """ISO/IEC 14496-15 Annex E: ``hvc1.[A-C]<profile>.<compat reversed>.<L|H><level>.<cons>``."""
    conf = _child(data, body + _VISUAL_ENTRY, end, "hvcC")
    if conf is None or conf[0] + 13 > conf[1]:
        raise Fmp4Error(f"sample entry {entry!r} has no usable hvcC box")
    c = conf[0]
    space, tier, idc = data[c + 1] >> 6, (data[c + 1] >> 5) & 1, data[c + 1] & 0x1F
    compat = _reverse32(int.from_bytes(data[c + 2 : c + 6], "big"))
    constraints = bytes(data[c + 6 : c + 12]).rstrip(b"\0")
    parts = [entry, f"{'' if space == 0 else 'ABC'[space - 1]}{idc}", f"{compat:X}"]
    parts.append(f"{'HL'[tier == 0]}{data[c + 12]}")
    parts += [f"{b:X}" for b in constraints]
    return ".".join(parts)


def _descriptor(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """(tag, body start, body end) of an MPEG-4 descriptor (expandable size, ISO/IEC 14496-1)."""
    if pos + 2 > end:
        raise Fmp4Error("esds descriptor is truncated")
    tag, size, pos = data[pos], 0, pos + 1
    for _ in range(4):
        byte = data[pos]
        size, pos = (size << 7) | (byte & 0x7F), pos + 1
        if not byte & 0x80:
            break
    if pos + size > end:
        raise Fmp4Error("esds descriptor is truncated")
    return tag, pos, pos + size


def _mp4a(data: bytes, body: int, end: int) -> str:
    version = int.from_bytes(data[body + 8 : body + 10], "big")
    start = body + _AUDIO_ENTRY + {1: 16, 2: 36}.get(version, 0)
    esds = _child(data, start, end, "esds")
    if esds is None:
        raise Fmp4Error("sample entry 'mp4a' has no esds box")
    tag, pos, stop = _descriptor(data, esds[0] + 4, esds[1])
    if tag != 0x03:
        raise Fmp4Error("esds does not start with an ES_Descriptor")
    flags = data[pos + 2]
    pos += 3 + (2 if flags & 0x80 else 0) + (1 + data[pos + 3] if flags & 0x40 else 0)
    pos += 2 if flags & 0x20 else 0
    tag, pos, stop = _descriptor(data, pos, stop)
    if tag != 0x04:
        raise Fmp4Error("esds has no DecoderConfigDescriptor")
    oti = data[pos]
    if oti != 0x40:
        return f"mp4a.{oti:02x}"
    if pos + 13 >= stop:
        return "mp4a.40"
    tag, dsi, dsi_end = _descriptor(data, pos + 13, stop)
    if tag != 0x05 or dsi == dsi_end:
        return "mp4a.40"
    aot = data[dsi] >> 3
    if aot == 31 and dsi + 1 < dsi_end:
        aot = 32 + (((data[dsi] & 0x07) << 3) | (data[dsi + 1] >> 5))
    return f"mp4a.40.{aot}"


def codecs_from_init(init: bytes) -> str:
    """The RFC 6381 codecs string of an init segment, video tracks first: ``avc1.640028,mp4a.40.2``.

    Raises :class:`Fmp4Error` naming the sample entry when a track's codec is not one a
    browser's MSE can be asked about here (H.264, H.265, AAC).
    """
    try:
        return _codecs(init)
    except (IndexError, struct.error) as exc:
        raise Fmp4Error(f"malformed init segment ({exc})") from exc


def _codecs(init: bytes) -> str:
    moov = next(((b, e) for kind, b, e in iter_boxes(init) if kind == "moov"), None)
    if moov is None:
        raise Fmp4Error("init segment has no moov box")
    video: list[str] = []
    audio: list[str] = []
    for trak in _children(init, *moov, "trak"):
        for entry, body, end in _stsd_entries(init, trak)[:1]:
            if entry in ("avc1", "avc3"):
                video.append(_avc(entry, init, body, end))
            elif entry in ("hvc1", "hev1"):
                video.append(_hevc(entry, init, body, end))
            elif entry == "mp4a":
                audio.append(_mp4a(init, body, end))
            else:
                raise Fmp4Error(f"unsupported sample entry {entry!r} (codec not H.264/H.265/AAC)")
    if not video and not audio:
        raise Fmp4Error("init segment has no track with a sample description")
    return ",".join(video + audio)


__all__ = [
    "MAX_BOX_SIZE",
    "Box",
    "BoxReader",
    "Fmp4Error",
    "Fragment",
    "InitSegment",
    "Split",
    "Splitter",
    "codecs_from_init",
    "fragment_is_keyframe",
    "iter_boxes",
    "split",
]
