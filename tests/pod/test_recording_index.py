"""The recording index (real SQLite in a temp dir): files, spans with gap reasons, summary."""

from __future__ import annotations

import time
from pathlib import Path

from platebridge.pod.recording.index import RecordedFile, RecordingIndex, Span


def _file(tmp: Path, cam: str, start: float, end: float, size: int = 1000) -> RecordedFile:
    return RecordedFile(
        camera_id=cam,
        path=tmp / cam / f"{start:.0f}.mp4",
        start=start,
        end=end,
        size=size,
        keyframes=((start, 900), (start + 1.0, 5000)),
        init_size=900,
    )


def test_files_round_trip_and_overlap(tmp_path: Path) -> None:
    index = RecordingIndex(tmp_path / "index.sqlite3")
    t = 1_700_000_000.0
    index.put_many([_file(tmp_path, "a", t, t + 60), _file(tmp_path, "a", t + 60, t + 120)])
    index.put(_file(tmp_path, "b", t, t + 60))
    got = index.files("a", t + 30, t + 90)
    assert [f.start for f in got] == [t, t + 60]
    assert got[0].keyframes == ((t, 900), (t + 1.0, 5000))
    assert got[0].init_size == 900 and got[0].complete
    assert index.files("a", t + 120, t + 200) == []
    assert index.files("a", t - 10, t) == []
    assert [f.camera_id for f in index.files("b", t, t + 1)] == ["b"]
    index.remove([got[0].path])
    assert index.get(got[0].path) is None
    assert index.total_bytes() == 2000


def test_spans_join_files_and_label_gaps(tmp_path: Path) -> None:
    index = RecordingIndex(tmp_path / "index.sqlite3")
    t = time.time() - 1000
    index.put_many(
        [
            _file(tmp_path, "a", t, t + 60),
            _file(tmp_path, "a", t + 60.2, t + 120),  # joins the first
            _file(tmp_path, "a", t + 200, t + 260),
            _file(tmp_path, "a", t + 400, t + 460),
        ]
    )
    index.add_gap("a", t + 120.3, t + 199.8, "camera_down")
    index.open_gap("a", "disk_full", t + 470)
    spans = index.spans("a", t, t + 600)
    assert spans == [
        Span(t, t + 120, "recording"),
        Span(t + 120, t + 200, "gap", "camera_down"),
        Span(t + 200, t + 260, "recording"),
        Span(t + 260, t + 400, "gap", "unknown"),
        Span(t + 400, t + 460, "recording"),
        Span(t + 460, t + 600, "gap", "disk_full"),
    ]
    # clipped to the range asked and to now
    clipped = index.spans("a", t + 30, t + 100)
    assert clipped == [Span(t + 30, t + 100, "recording")]
    assert index.spans("a", time.time() + 10, time.time() + 20) == []
    summary = index.summary("a")
    assert summary.oldest == t and summary.newest == t + 460
    assert summary.bytes == 4000 and summary.files == 4
    assert [g.reason for g in summary.recent_gaps] == ["camera_down", "unknown", "disk_full"]


def test_reopen_keeps_rows(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite3"
    index = RecordingIndex(path)
    index.put(_file(tmp_path, "a", 100.0, 160.0))
    index.set_meta("alive", 123.5)
    index.close()
    again = RecordingIndex(path)
    assert again.paths("a") == {tmp_path / "a" / "100.mp4"}
    assert again.meta("alive") == 123.5
