"""Playback's pure logic on byte-level recordings built here with struct: the keyframe at or
before a time, the byte range of a body, the tfdt (and prft) rewrite checked by parsing what
comes out, growing files, the export plan and argv (real ffmpeg: test_playback_ffmpeg)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from platebridge.core.fmp4 import split
from platebridge.pod.recording.export import concat_list, export_argv, plan_export
from platebridge.pod.recording.index import RecordedFile, RecordingIndex
from platebridge.pod.recording.media import Media, body, first_recording, locate, prepare
from platebridge.pod.recording.mp4scan import NTP_UNIX_OFFSET, scan, scan_file
from platebridge.pod.recording.playback import Rebaser, decode_times, plan_media, wall_offset

VIDEO, AUDIO = 1, 2
V_SCALE, A_SCALE = 90_000, 16_000
SYNC, NON_SYNC = 0x0200_0000, 0x0101_0000
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def box(kind: str, *payload: bytes) -> bytes:
    data = b"".join(payload)
    return struct.pack(">I4s", 8 + len(data), kind.encode()) + data


def full(kind: str, version: int, flags: int, *payload: bytes) -> bytes:
    return box(kind, struct.pack(">I", (version << 24) | flags), *payload)


def _trak(track: int, handler: bytes, scale: int) -> bytes:
    tkhd = full("tkhd", 0, 3, struct.pack(">III", 0, 0, track), bytes(68))
    mdhd = full("mdhd", 0, 0, struct.pack(">IIII", 0, 0, scale, 0), bytes(4))
    hdlr = full("hdlr", 0, 0, bytes(4), handler, bytes(12), b"h\0")
    return box("trak", tkhd, box("mdia", mdhd, hdlr))


def init_segment() -> bytes:
    trex = [full("trex", 0, 0, struct.pack(">IIIII", t, 1, 0, 0, 0)) for t in (VIDEO, AUDIO)]
    moov = box(
        "moov",
        full("mvhd", 0, 0, bytes(96)),
        _trak(VIDEO, b"vide", V_SCALE),
        _trak(AUDIO, b"soun", A_SCALE),
        box("mvex", *trex),
    )
    return box("ftyp", b"isom", bytes(4), b"isomiso6") + moov


def _traf(track: int, decode: int, durations: list[int], first_flags: int) -> bytes:
    tfhd = full("tfhd", 0, 0x020000, struct.pack(">I", track))
    tfdt = full("tfdt", 1, 0, struct.pack(">Q", decode))
    samples = b"".join(struct.pack(">II", d, 10) for d in durations)
    trun = full("trun", 0, 0x305, struct.pack(">iiI", len(durations), 0, first_flags), samples)
    return box("traf", tfhd, tfdt, trun)


def fragment(seq: int, media: float, keyframe: bool, wall: float | None) -> bytes:
    """One second: 10 video samples from ``media`` s, and 1 s of audio in 2 samples."""
    flags = SYNC if keyframe else NON_SYNC
    moof = box(
        "moof",
        full("mfhd", 0, 0, struct.pack(">I", seq)),
        _traf(VIDEO, round(media * V_SCALE), [V_SCALE // 10] * 10, flags),
        _traf(AUDIO, round(media * A_SCALE), [A_SCALE // 2] * 2, SYNC),
    )
    out = moof + box("mdat", bytes([seq % 256]) * 120)
    if wall is not None:
        ntp = round((wall + NTP_UNIX_OFFSET) * 2**32)
        prft = full("prft", 1, 0, struct.pack(">IQQ", VIDEO, ntp, round(media * V_SCALE)))
        out = prft + out
    return out


def recording(seconds: int, media0: float = 100.0, gop: int = 2, wall0: float = T0) -> bytes:
    """A file like the recorder's: init, then 1 s fragments, a keyframe every ``gop`` s."""
    frags = [fragment(i + 1, media0 + i, i % gop == 0, wall0 + i + 0.05) for i in range(seconds)]
    return init_segment() + b"".join(frags)


def index_row(path: Path, start: float, size: int | None = None) -> RecordedFile:
    """The row the scanner would put, with the file starting at wall time ``start``."""
    scanned = scan_file(path)
    span = scanned.media_span()
    assert span is not None
    offset = start - span[0]
    whole = scanned.whole_size if size is None else size
    keys = [(t, o) for t, o in scanned.keyframes(offset) if o < whole]
    last = [f for f in scanned.fragments if f.end <= whole][-1]
    return RecordedFile(
        camera_id="gate-camera-1",
        path=path,
        start=start,
        end=round(last.media_start + last.media_duration + offset, 3),
        size=whole,
        keyframes=tuple(keys),
        init_size=scanned.init_size,
        complete=size is None,
    )


@pytest.fixture
def ten(tmp_path: Path) -> RecordedFile:
    path = tmp_path / "000000.mp4"
    path.write_bytes(recording(10))
    return index_row(path, T0)


def _scanned(file: RecordedFile) -> list[object]:
    with file.path.open("rb") as f:
        return list(scan(f, file.size).fragments)


def test_keyframe_at_or_before_start(ten: RecordedFile) -> None:
    frags = scan_file(ten.path).fragments
    assert wall_offset(ten, frags) == pytest.approx(T0 - 100.0)
    plan = plan_media(ten, frags, T0 + 3.5, T0 + 5.5)
    assert plan is not None
    assert plan.media_start == T0 + 2  # keyframes every 2 s: 0, 2, 4 …
    assert plan.first == frags[2].offset
    # fragments starting before the wanted end: 2, 3, 4, 5 → ends at 6
    assert plan.end == frags[5].end and plan.media_end == T0 + 6
    assert not plan.file_end
    # on a keyframe: from it; the end goes on to just before the next keyframe (5 → 6) …
    on = plan_media(ten, frags, T0 + 4.0, T0 + 5.0)
    assert on is not None and on.media_start == T0 + 4 and on.media_end == T0 + 6
    # … so the next body, asked from there, starts there: chunks without overlap
    follow = plan_media(ten, frags, on.media_end, on.media_end + 1)
    assert follow is not None and follow.media_start == on.media_end and follow.first == on.end
    # never into a fragment at or after the token's end
    capped = plan_media(ten, frags, T0 + 4.0, T0 + 5.0, not_after=T0 + 5)
    assert capped is not None and capped.media_end == T0 + 5


def test_body_never_past_the_file(ten: RecordedFile) -> None:
    frags = scan_file(ten.path).fragments
    plan = plan_media(ten, frags, T0 + 7, T0 + 60)
    assert plan is not None
    assert plan.media_start == T0 + 6 and plan.media_end == T0 + 10
    assert plan.end == ten.size and plan.file_end


def test_not_before_the_token(ten: RecordedFile) -> None:
    frags = scan_file(ten.path).fragments
    plan = plan_media(ten, frags, T0 + 3.5, T0 + 6, not_before=T0 + 3)
    assert plan is not None and plan.media_start == T0 + 4  # not the keyframe at T0+2
    assert plan_media(ten, frags, T0 + 9.5, T0 + 10, not_before=T0 + 9) is None


def test_start_before_the_file_plays_from_its_first_keyframe(ten: RecordedFile) -> None:
    plan = plan_media(ten, scan_file(ten.path).fragments, T0 - 30, T0 + 2)
    assert plan is not None and plan.media_start == T0 and plan.media_end == T0 + 2


def test_growing_file_is_served_up_to_its_indexed_size(tmp_path: Path) -> None:
    path = tmp_path / "000000.mp4"
    data = recording(10)
    path.write_bytes(data + data[-50:])  # a torn fragment being written
    frags = scan_file(path).fragments
    indexed = index_row(path, T0, size=frags[5].end)  # the index saw 6 whole fragments
    assert not indexed.complete
    plan = plan_media(indexed, frags, T0 + 4.5, T0 + 20)
    assert plan is not None
    assert plan.end == frags[5].end and plan.media_end == T0 + 6 and plan.file_end


def test_tfdt_rewrite_per_track() -> None:
    first = fragment(1, 100.0, True, None)
    second = fragment(2, 101.0, False, None)
    rebaser = Rebaser()
    moof1 = rebaser.moof(first[: struct.unpack(">I", first[:4])[0]])
    moof2 = rebaser.moof(second[: struct.unpack(">I", second[:4])[0]])
    assert decode_times(moof1) == {VIDEO: 0, AUDIO: 0}
    assert decode_times(moof2) == {VIDEO: V_SCALE, AUDIO: A_SCALE}
    assert len(moof1) == len(first) - 128  # same size: trun data offsets still hold


def _write(tmp: Path, name: str, data: bytes) -> Path:
    path = tmp / name
    path.write_bytes(data)
    return path


def test_body_parses_and_starts_at_zero(ten: RecordedFile) -> None:
    frags = scan_file(ten.path).fragments
    plan = plan_media(ten, frags, T0 + 5.2, T0 + 8)
    assert plan is not None
    media = Media(plan, plan.media_end, False)
    data = b"".join(body(media))
    assert len(data) == media.length
    parsed = split(data)
    assert parsed.init is not None and parsed.init.data == init_segment()
    assert parsed.fragments[0].keyframe and len(parsed.fragments) == 4  # 4, 5, 6, 7
    rescanned = scan_file(_write(ten.path.parent, "body.mp4", data))
    starts = [f.media_start for f in rescanned.fragments]
    assert starts == [0.0, 1.0, 2.0, 3.0]
    # the prft still maps media time to the wall clock: its media time is rebased too
    assert rescanned.wall_offset() == pytest.approx(plan.media_start + 0.05, abs=1e-3)


def _index(tmp: Path, files: list[tuple[str, float, int]]) -> RecordingIndex:
    index = RecordingIndex(tmp / "index.sqlite3")
    for name, start, seconds in files:
        path = _write(tmp, name, recording(seconds, media0=0.0, wall0=start))
        index.put(index_row(path, start))
    return index


def test_prepare_next_and_live_edge(tmp_path: Path) -> None:
    # two joined files, a gap, a third file
    index = _index(tmp_path, [("a.mp4", T0, 10), ("b.mp4", T0 + 10, 10), ("c.mp4", T0 + 60, 10)])
    day = (T0 - 3600, T0 + 86400)
    now = T0 + 100
    mid = prepare(index, "gate-camera-1", T0 + 3, 4, day, now)
    assert mid is not None and mid.plan.file.path.name == "a.mp4"
    assert mid.plan.media_start == T0 + 2 and mid.next == mid.plan.media_end == T0 + 8
    end_a = prepare(index, "gate-camera-1", T0 + 8.5, 10, day, now)
    assert end_a is not None and end_a.plan.media_end == T0 + 10
    assert end_a.next == T0 + 10 and not end_a.live_edge  # the next file follows on
    end_b = prepare(index, "gate-camera-1", T0 + 18, 10, day, now)
    assert end_b is not None and end_b.next == T0 + 60 and not end_b.live_edge
    in_gap = prepare(index, "gate-camera-1", T0 + 30, 10, day, now)
    assert in_gap is not None and in_gap.plan.media_start == T0 + 60  # the next recording
    assert in_gap.plan.media_end == T0 + 70 and in_gap.live_edge and in_gap.next is None
    assert prepare(index, "gate-camera-1", T0 + 75, 10, day, now) is None
    # the token's range bounds the search for a next recording, and the Next header
    short = (T0, T0 + 40)
    assert prepare(index, "gate-camera-1", T0 + 30, 10, short, now) is None
    end_b2 = prepare(index, "gate-camera-1", T0 + 18, 10, short, now)
    assert end_b2 is not None and end_b2.next is None and not end_b2.live_edge
    # a body that ends where the token does has no Next (it would be out of range)
    capped = prepare(index, "gate-camera-1", T0 + 3, 4, (T0, T0 + 7), now)
    assert capped is not None and capped.plan.media_end == T0 + 7 and capped.next is None
    assert first_recording(index, "gate-camera-1", T0 + 20.5, T0 + 86400) == T0 + 60
    found = locate(index, "gate-camera-1", T0 + 10, T0 + 86400)
    assert found is not None and found.path.name == "b.mp4"


def _row(name: str, start: float, end: float) -> RecordedFile:
    return RecordedFile("cam", Path(f"/rec/cam/{name}"), start, end, 1, ((start, 9),), 9)


def test_export_plan() -> None:
    files = [_row("a.mp4", 0, 60), _row("b.mp4", 60, 120), _row("c.mp4", 200, 260)]
    plan = plan_export(files, 50, 70)
    assert plan is not None
    assert [f.path.name for f in plan.files] == ["a.mp4", "b.mp4"]
    assert plan.seek == 50 and plan.duration == 20
    gap = plan_export(files, 110, 230)  # 10 s of b, the gap, 30 s of c
    assert gap is not None and gap.seek == 50 and gap.duration == 40
    inside = plan_export(files, 130, 210)  # starts in the gap: from c's start
    assert inside is not None and inside.seek == 0 and inside.duration == 10
    assert plan_export(files, 121, 199) is None


def test_export_argv_and_list() -> None:
    files = [_row("it's.mp4", 0, 60), _row("b.mp4", 60, 120)]
    plan = plan_export(files, 12.25, 72.5)
    assert plan is not None
    text = concat_list(plan)
    assert text.splitlines() == [
        "ffconcat version 1.0",
        "file '/rec/cam/it'\\''s.mp4'",
        "file '/rec/cam/b.mp4'",
    ]
    argv = export_argv("ffmpeg", plan, Path("/tmp/x.txt"), Path("/tmp/x.mp4"))
    assert argv[0] == "ffmpeg" and argv[-1] == "/tmp/x.mp4"
    # -ss/-t before -i (input seeking: keyframe + edit list), stream copy, faststart
    i = argv.index("-i")
    assert argv[argv.index("-ss") + 1] == "12.250" and argv.index("-ss") < i
    assert argv[argv.index("-t") + 1] == "60.250" and argv.index("-t") < i
    assert argv[i - 4 : i + 2] == ["-f", "concat", "-safe", "0", "-i", "/tmp/x.txt"]
    assert argv[argv.index("-c") + 1] == "copy"
    assert argv[argv.index("-movflags") + 1] == "+faststart"
    assert "-vf" not in argv and "-c:v" not in argv  # never a re-encode


def test_a_file_gone_under_the_index_is_no_recording(tmp_path: Path) -> None:
    index = _index(tmp_path, [("a.mp4", T0, 10)])
    (tmp_path / "a.mp4").unlink()  # retention deleted it between the query and the open
    assert prepare(index, "gate-camera-1", T0 + 3, 4, (T0, T0 + 60), T0 + 100) is None
