"""core.fmp4 on byte-level fixtures built here with struct (real ffmpeg: test_fmp4_ffmpeg)."""

from __future__ import annotations

import struct

import pytest

from platebridge.core.fmp4 import (
    MAX_BOX_SIZE,
    BoxReader,
    Fmp4Error,
    Fragment,
    InitSegment,
    Splitter,
    codecs_from_init,
    split,
)

SYNC = 0x0200_0000  # depends on nothing, sync
NON_SYNC = 0x0101_0000  # depends on others, non-sync


def box(kind: str, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return struct.pack(">I4s", 8 + len(body), kind.encode()) + body


def full(kind: str, version: int, flags: int, *payload: bytes) -> bytes:
    return box(kind, struct.pack(">I", (version << 24) | flags), *payload)


def large(kind: str, payload: bytes) -> bytes:
    return struct.pack(">I4sQ", 1, kind.encode(), 16 + len(payload)) + payload


def visual_entry(kind: str, *children: bytes) -> bytes:
    head = bytes(6) + struct.pack(">H", 1) + bytes(16) + struct.pack(">HH", 320, 240)
    head += bytes(50)  # resolutions, reserved, frame count, compressor name, depth, pre_defined
    assert len(head) == 78
    return box(kind, head, *children)


def audio_entry(*children: bytes) -> bytes:
    head = bytes(6) + struct.pack(">H", 1) + bytes(8) + struct.pack(">HHHHI", 1, 16, 0, 0, 8000)
    assert len(head) == 28
    return box("mp4a", head, *children)


def avcc(profile: int, compat: int, level: int) -> bytes:
    return box("avcC", bytes([1, profile, compat, level, 0xFF, 0xE0, 0x01]))


def hvcc(space: int, tier: int, idc: int, compat: int, constraints: bytes, level: int) -> bytes:
    first = (space << 6) | (tier << 5) | idc
    return box("hvcC", bytes([1, first]) + struct.pack(">I", compat) + constraints + bytes([level]))


def hvc(kind: str, *fields: int | bytes) -> bytes:
    space, tier, idc, compat, constraints, level = fields
    assert isinstance(constraints, bytes)
    return visual_entry(
        kind, hvcc(int(space), int(tier), int(idc), int(compat), constraints, int(level))
    )


def descriptor(tag: int, body: bytes) -> bytes:
    return bytes([tag, 0x80, 0x80, 0x80, len(body)]) + body  # expandable size, 4 bytes


def esds(oti: int, asc: bytes) -> bytes:
    dsi = descriptor(0x05, asc)
    dcd = descriptor(0x04, bytes([oti, 0x15]) + bytes(3) + bytes(8) + dsi)
    es = descriptor(0x03, struct.pack(">HB", 1, 0) + dcd + descriptor(0x06, b"\x02"))
    return full("esds", 0, 0, es)


def trak(track_id: int, handler: str, entry: bytes) -> bytes:
    tkhd = full("tkhd", 0, 3, struct.pack(">III", 0, 0, track_id), bytes(68))
    hdlr = full("hdlr", 0, 0, bytes(4), handler.encode(), bytes(12), b"h\0")
    stsd = full("stsd", 0, 0, struct.pack(">I", 1), entry)
    stbl = box("stbl", stsd)
    return box("trak", tkhd, box("mdia", hdlr, box("minf", stbl)))


def trex(track_id: int, flags: int) -> bytes:
    return full("trex", 0, 0, struct.pack(">IIIII", track_id, 1, 0, 0, flags))


def init_segment(*traks: bytes, trexes: tuple[bytes, ...] = ()) -> bytes:
    ftyp = box("ftyp", b"isom", struct.pack(">I", 512), b"isomiso6mp41")
    return ftyp + box("moov", full("mvhd", 0, 0, bytes(96)), *traks, box("mvex", *trexes))


VIDEO = trak(1, "vide", visual_entry("avc1", avcc(0x64, 0x00, 0x28)))
AUDIO = trak(2, "soun", audio_entry(esds(0x40, bytes([0x15, 0x88]))))  # AAC-LC 8 kHz mono


def traf(
    track_id: int,
    *,
    first: int | None = None,
    tfhd_default: int | None = None,
    per_sample: list[int] | None = None,
    with_duration: bool = True,
) -> bytes:
    tf_flags, tf_body = 0x020000, struct.pack(">I", track_id)  # default-base-is-moof
    if tfhd_default is not None:
        tf_flags |= 0x20
        tf_body += struct.pack(">I", tfhd_default)
    flags, body, count = 0x1, struct.pack(">i", 0), len(per_sample or [0])
    if first is not None:
        flags |= 0x4
        body += struct.pack(">I", first)
    entries = b""
    for sample_flags in per_sample or [None]:  # type: ignore[list-item]
        if with_duration:
            entries += struct.pack(">I", 40)
        entries += struct.pack(">I", 100)
        if per_sample is not None:
            entries += struct.pack(">I", sample_flags)
    flags |= (0x100 if with_duration else 0) | 0x200 | (0x400 if per_sample is not None else 0)
    trun = full("trun", 0, flags, struct.pack(">I", count), body, entries)
    return box("traf", full("tfhd", 0, tf_flags, tf_body), full("tfdt", 1, 0, bytes(8)), trun)


def fragment(*trafs: bytes, prefix: bytes = b"") -> bytes:
    moof = box("moof", full("mfhd", 0, 0, struct.pack(">I", 1)), *trafs)
    return prefix + moof + box("mdat", b"\x00" * 20)


def test_box_reader_incremental_any_chunking() -> None:
    data = box("ftyp", b"isom") + large("mdat", b"x" * 40) + box("free")
    for step in (1, 3, 7, len(data)):
        reader = BoxReader()
        boxes = [b for i in range(0, len(data), step) for b in reader.feed(data[i : i + step])]
        assert [(b.type, len(b.data)) for b in boxes] == [("ftyp", 12), ("mdat", 56), ("free", 8)]
        assert boxes[1].header_size == 16 and boxes[1].payload == b"x" * 40
        assert reader.buffered == 0


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (struct.pack(">I4s", 0, b"mdat"), "size 0"),
        (struct.pack(">I4s", 4, b"moof"), "smaller than its header"),
        (struct.pack(">I4s", MAX_BOX_SIZE + 1, b"mdat"), "more than"),
        (struct.pack(">I4sQ", 1, b"mdat", 2**40), "more than"),
    ],
)
def test_box_reader_refuses_bad_sizes(raw: bytes, message: str) -> None:
    with pytest.raises(Fmp4Error, match=message):
        BoxReader().feed(raw)


STYP = box("styp", b"msdh")


def test_split_groups_init_and_fragments_with_keyframes() -> None:
    init = init_segment(VIDEO, AUDIO, trexes=(trex(1, NON_SYNC), trex(2, SYNC)))
    frags = [
        fragment(
            traf(1, first=SYNC), traf(2), prefix=box("styp", b"msdh") + box("prft", bytes(16))
        ),
        fragment(traf(1)),  # trex default of track 1: non-sync
        fragment(traf(2)),  # audio only: never a keyframe fragment
        fragment(traf(1, tfhd_default=SYNC)),
        fragment(traf(1, per_sample=[SYNC, NON_SYNC])),
        fragment(traf(1, per_sample=[NON_SYNC, SYNC], with_duration=False)),
    ]
    result = split(init + b"".join(frags) + box("mfra", bytes(8)))
    assert result.init == InitSegment(init)
    assert [f.data for f in result.fragments] == frags
    assert [f.keyframe for f in result.fragments] == [True, False, False, True, True, False]


def test_splitter_incremental_and_restart() -> None:
    init = init_segment(VIDEO, trexes=(trex(1, NON_SYNC),))
    stream = init + fragment(traf(1, first=SYNC)) + fragment(traf(1)) + init
    splitter = Splitter()
    out = [x for i in range(0, len(stream), 5) for x in splitter.feed(stream[i : i + 5])]
    assert out == [
        InitSegment(init),
        Fragment(fragment(traf(1, first=SYNC)), True),
        Fragment(fragment(traf(1)), False),
        InitSegment(init),
    ]


def test_no_trex_no_flags_counts_as_sync() -> None:
    result = split(init_segment(VIDEO) + fragment(traf(1)))
    assert [f.keyframe for f in result.fragments] == [True]


@pytest.mark.parametrize(
    ("stream", "message"),
    [
        (fragment(traf(1)), "before the init segment"),
        (init_segment(VIDEO) + box("mdat"), "without a 'moof'"),
        (init_segment(VIDEO) + box("moof") + box("moof"), "after a moof"),
        (init_segment(VIDEO) + box("moof", box("traf", box("trun"))) + box("mdat"), "tfhd"),
        (init_segment(VIDEO) + box("moof", b"\0\0\0\x30traf") + box("mdat"), "truncated"),
    ],
)
def test_splitter_refuses_malformed(stream: bytes, message: str) -> None:
    with pytest.raises(Fmp4Error, match=message):
        split(stream)


def test_codecs_avc_and_aac() -> None:
    assert codecs_from_init(init_segment(VIDEO, AUDIO)) == "avc1.640028,mp4a.40.2"
    main = trak(1, "vide", visual_entry("avc3", avcc(0x4D, 0x40, 0x1F)))
    assert codecs_from_init(init_segment(AUDIO, main)) == "avc3.4d401f,mp4a.40.2"


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        # Main, Main tier, level 3.1 (93), progressive+frame-only constraint byte 0xB0
        (
            visual_entry("hvc1", hvcc(0, 0, 1, 0x6000_0000, b"\xb0" + bytes(5), 93)),
            "hvc1.1.6.L93.B0",
        ),
        # Main 10, High tier, level 4 (120), two non-zero constraint bytes
        (
            visual_entry("hev1", hvcc(0, 1, 2, 0x2000_0000, b"\x90\x01" + bytes(4), 120)),
            "hev1.2.4.H120.90.1",
        ),
        # profile space 1 (A), no constraints
        (hvc("hvc1", 1, 0, 1, 0x4000_0000, bytes(6), 60), "hvc1.A1.2.L60"),
    ],
)
def test_codecs_hevc_annex_e(entry: bytes, expected: str) -> None:
    assert codecs_from_init(init_segment(trak(1, "vide", entry))) == expected


def test_codecs_he_aac_and_escape_object_type() -> None:
    he = trak(2, "soun", audio_entry(esds(0x40, bytes([0x2B, 0x92, 0x08, 0x00]))))  # AOT 5
    assert codecs_from_init(init_segment(he)) == "mp4a.40.5"
    esc = trak(2, "soun", audio_entry(esds(0x40, bytes([0xF8, 0x20, 0x00]))))  # 31 → 32 + 1
    assert codecs_from_init(init_segment(esc)) == "mp4a.40.33"


@pytest.mark.parametrize(
    ("init", "message"),
    [
        (init_segment(trak(1, "vide", visual_entry("vp09"))), "'vp09'"),
        (init_segment(trak(1, "soun", box("alaw", bytes(28)))), "'alaw'"),
        (init_segment(trak(1, "vide", visual_entry("avc1"))), "avcC"),
        (box("ftyp", b"isom"), "no moov"),
    ],
)
def test_codecs_unknown_or_broken_raise(init: bytes, message: str) -> None:
    with pytest.raises(Fmp4Error, match=message):
        codecs_from_init(init)
