"""The recording index: SQLite (stdlib, WAL) at ``<recording_dir>/index.sqlite3``.

One row per **closed or growing** recorded file (its wall-clock start and end, size, the byte
offset and time of each keyframe fragment) and one row per **gap** the agent knows the reason
of (``camera_down``, ``pod_down``, ``disk_full``, ``recording_off``; an open gap has no end
yet). :meth:`RecordingIndex.spans` turns them into the timeline: recorded spans (files that
follow each other within :data:`JOIN_SECONDS` are one span) and between them gaps, labelled by
the gap rows that cover them (``unknown`` where none does).

Every method is synchronous and thread-safe (one connection, one lock): callers on the event
loop use ``asyncio.to_thread``. Times are float epoch seconds (UTC).
"""

from __future__ import annotations

import json
import sqlite3
import struct
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

GapReason = Literal["camera_down", "pod_down", "disk_full", "recording_off", "unknown"]
SpanKind = Literal["recording", "gap"]
#: Files closer than this (end of one to start of the next) are one recorded span.
JOIN_SECONDS = 1.5
#: Gaps shorter than this are not shown (a keyframe-aligned file boundary, clock jitter).
MIN_GAP_SECONDS = 0.5
#: A gap row that starts (or ends) this close to the hole it is in names all of it: the agent
#: notices a camera down or a full disk a few seconds after the last fragment was written.
ABSORB_SECONDS = 30.0
#: The longest a file may last (``recording_file_seconds`` ≤ 600, plus a 10 s GOP and slack):
#: bounds the range scan of :meth:`RecordingIndex.files`.
MAX_FILE_SECONDS = 700.0
_KEYFRAME = struct.Struct("<dq")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,
    camera_id TEXT NOT NULL,
    start REAL NOT NULL,
    "end" REAL NOT NULL,
    size INTEGER NOT NULL,
    init_size INTEGER NOT NULL,
    keyframes BLOB NOT NULL,
    complete INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS files_camera_start ON files (camera_id, start);
CREATE INDEX IF NOT EXISTS files_start ON files (start);
CREATE TABLE IF NOT EXISTS gaps (
    id INTEGER PRIMARY KEY,
    camera_id TEXT NOT NULL,
    start REAL NOT NULL,
    "end" REAL,
    reason TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS gaps_camera_start ON gaps (camera_id, start);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value REAL NOT NULL);
"""


@dataclass(frozen=True)
class RecordedFile:
    camera_id: str
    path: Path
    start: float
    end: float
    size: int
    #: (epoch time, byte offset of its ``moof``) of every fragment that starts with a keyframe.
    keyframes: tuple[tuple[float, int], ...]
    #: Bytes of ``ftyp`` + ``moov`` at the start of the file.
    init_size: int
    #: False while ffmpeg is still writing it (indexed up to its last whole fragment).
    complete: bool = True


@dataclass(frozen=True)
class Span:
    start: float
    end: float
    kind: SpanKind
    reason: str | None = None


@dataclass(frozen=True)
class RecordingSummary:
    camera_id: str
    oldest: float | None
    newest: float | None
    bytes: int
    files: int
    #: Gaps of the last 24 hours (newest last).
    recent_gaps: tuple[Span, ...]


def pack_keyframes(keyframes: Iterable[tuple[float, int]]) -> bytes:
    return b"".join(_KEYFRAME.pack(round(t * 1000), offset) for t, offset in keyframes)


def unpack_keyframes(blob: bytes) -> tuple[tuple[float, int], ...]:
    return tuple((ms / 1000, offset) for ms, offset in _KEYFRAME.iter_unpack(blob))


def _file(row: sqlite3.Row) -> RecordedFile:
    return RecordedFile(
        camera_id=row["camera_id"],
        path=Path(row["path"]),
        start=row["start"],
        end=row["end"],
        size=row["size"],
        keyframes=unpack_keyframes(row["keyframes"]),
        init_size=row["init_size"],
        complete=bool(row["complete"]),
    )


class RecordingIndex:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, args: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # -- files -----------------------------------------------------------------------------

    def put(self, file: RecordedFile) -> None:
        """Insert or replace the row of ``file.path`` (a growing file is put again and again)."""
        self.put_many([file])

    def put_many(self, files: Iterable[RecordedFile]) -> None:
        rows = [
            (
                str(f.path),
                f.camera_id,
                f.start,
                f.end,
                f.size,
                f.init_size,
                pack_keyframes(f.keyframes),
                int(f.complete),
            )
            for f in files
        ]
        with self._tx() as db:
            db.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def remove(self, paths: Iterable[Path]) -> None:
        with self._tx() as db:
            db.executemany("DELETE FROM files WHERE path = ?", [(str(p),) for p in paths])

    def get(self, path: Path) -> RecordedFile | None:
        rows = self._query("SELECT * FROM files WHERE path = ?", (str(path),))
        return _file(rows[0]) if rows else None

    def files(self, camera_id: str, start: float, end: float) -> list[RecordedFile]:
        """The files of ``camera_id`` overlapping ``[start, end)``, by start."""
        rows = self._query(
            'SELECT * FROM files WHERE camera_id = ? AND start >= ? AND start < ? AND "end" > ?'
            " ORDER BY start",
            (camera_id, start - MAX_FILE_SECONDS, end, start),
        )
        return [_file(r) for r in rows]

    def oldest(self, limit: int, camera_id: str | None = None) -> list[RecordedFile]:
        """The oldest files (of one camera, or of all), oldest first: retention's order."""
        if camera_id is None:
            rows = self._query("SELECT * FROM files ORDER BY start LIMIT ?", (limit,))
        else:
            rows = self._query(
                "SELECT * FROM files WHERE camera_id = ? ORDER BY start LIMIT ?",
                (camera_id, limit),
            )
        return [_file(r) for r in rows]

    def older_than(self, camera_id: str, cutoff: float, limit: int) -> list[RecordedFile]:
        """Files of ``camera_id`` that ended before ``cutoff``, oldest first."""
        rows = self._query(
            'SELECT * FROM files WHERE camera_id = ? AND start < ? AND "end" < ?'
            " ORDER BY start LIMIT ?",
            (camera_id, cutoff, cutoff, limit),
        )
        return [_file(r) for r in rows]

    def known(self, paths: list[Path]) -> dict[Path, bool]:
        """Which of ``paths`` are indexed, and whether as complete (closed) files."""
        rows = self._query(
            "SELECT path, complete FROM files WHERE path IN (SELECT value FROM json_each(?))",
            (json.dumps([str(p) for p in paths]),),
        )
        return {Path(r["path"]): bool(r["complete"]) for r in rows}

    def paths(self, camera_id: str | None = None) -> set[Path]:
        if camera_id is None:
            rows = self._query("SELECT path FROM files")
        else:
            rows = self._query("SELECT path FROM files WHERE camera_id = ?", (camera_id,))
        return {Path(r["path"]) for r in rows}

    def total_bytes(self) -> int:
        rows = self._query("SELECT COALESCE(SUM(size), 0) AS n FROM files")
        return int(rows[0]["n"])

    # -- gaps ------------------------------------------------------------------------------

    def open_gap(self, camera_id: str, reason: GapReason, at: float | None = None) -> None:
        """Start a gap of ``reason`` (closing any open one of the camera first)."""
        at = time.time() if at is None else at
        with self._tx() as db:
            db.execute(
                'UPDATE gaps SET "end" = ? WHERE camera_id = ? AND "end" IS NULL', (at, camera_id)
            )
            db.execute(
                'INSERT INTO gaps (camera_id, start, "end", reason) VALUES (?, ?, NULL, ?)',
                (camera_id, at, reason),
            )

    def close_gap(self, camera_id: str, at: float | None = None) -> None:
        at = time.time() if at is None else at
        with self._tx() as db:
            db.execute(
                'UPDATE gaps SET "end" = ? WHERE camera_id = ? AND "end" IS NULL', (at, camera_id)
            )

    def add_gap(self, camera_id: str, start: float, end: float, reason: GapReason) -> None:
        with self._tx() as db:
            db.execute(
                'INSERT INTO gaps (camera_id, start, "end", reason) VALUES (?, ?, ?, ?)',
                (camera_id, start, end, reason),
            )

    def close_open_gaps(self, at: float) -> None:
        """Close every open gap at ``at`` (the agent's last sign of life, after a crash)."""
        with self._tx() as db:
            db.execute('UPDATE gaps SET "end" = ? WHERE "end" IS NULL', (at,))

    def prune_gaps(self, before: float) -> None:
        with self._tx() as db:
            db.execute('DELETE FROM gaps WHERE "end" IS NOT NULL AND "end" < ?', (before,))

    def _gap_rows(self, camera_id: str, start: float, end: float) -> list[tuple[float, float, str]]:
        now = time.time()
        rows = self._query(
            'SELECT start, "end", reason FROM gaps WHERE camera_id = ? AND start < ?'
            ' AND ("end" IS NULL OR "end" > ?) ORDER BY start',
            (camera_id, end, start),
        )
        return [(r["start"], r["end"] if r["end"] is not None else now, r["reason"]) for r in rows]

    # -- meta ------------------------------------------------------------------------------

    def set_meta(self, key: str, value: float) -> None:
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def meta(self, key: str) -> float | None:
        rows = self._query("SELECT value FROM meta WHERE key = ?", (key,))
        return float(rows[0]["value"]) if rows else None

    # -- the timeline ----------------------------------------------------------------------

    def _recorded(self, camera_id: str, start: float, end: float) -> list[tuple[float, float]]:
        rows = self._query(
            'SELECT start, "end" FROM files WHERE camera_id = ? AND start >= ? AND start < ?'
            ' AND "end" > ? ORDER BY start',
            (camera_id, start - MAX_FILE_SECONDS, end, start),
        )
        merged: list[list[float]] = []
        for row in rows:
            s, e = max(row["start"], start), min(row["end"], end)
            if merged and s - merged[-1][1] <= JOIN_SECONDS:
                merged[-1][1] = max(merged[-1][1], e)
            elif e > s:
                merged.append([s, e])
        return [(s, e) for s, e in merged]

    def spans(self, camera_id: str, start: float, end: float) -> list[Span]:
        """The timeline of ``[start, min(end, now))``: recorded spans and gaps, in order."""
        end = min(end, time.time())
        if end <= start:
            return []
        recorded = self._recorded(camera_id, start, end)
        gaps = self._gap_rows(camera_id, start, end)
        out: list[Span] = []
        cursor = start
        for s, e in [*recorded, (end, end)]:
            if s - cursor >= MIN_GAP_SECONDS:
                out.extend(_label(cursor, s, gaps))
            if e > s:
                out.append(Span(s, e, "recording", None))
            cursor = max(cursor, e)
        return out

    def summary(self, camera_id: str) -> RecordingSummary:
        rows = self._query(
            'SELECT MIN(start) AS oldest, MAX("end") AS newest, COALESCE(SUM(size), 0) AS bytes,'
            " COUNT(*) AS n FROM files WHERE camera_id = ?",
            (camera_id,),
        )
        row = rows[0]
        now = time.time()
        gaps = tuple(s for s in self.spans(camera_id, now - 86400, now) if s.kind == "gap")
        if row["oldest"] is not None:  # before the first recording is not a gap
            gaps = tuple(g for g in gaps if g.start >= row["oldest"])
        return RecordingSummary(
            camera_id, row["oldest"], row["newest"], int(row["bytes"]), int(row["n"]), gaps
        )


def _label(start: float, end: float, gaps: list[tuple[float, float, str]]) -> list[Span]:
    """The hole ``[start, end)`` as gap spans, each named by the gap rows covering it; an
    uncovered piece shorter than :data:`ABSORB_SECONDS` at either end takes its neighbour's
    reason, any other uncovered piece is ``unknown``."""
    pieces: list[Span] = []
    cursor = start
    for gs, ge, reason in gaps:
        gs, ge = max(gs, cursor), min(ge, end)
        if ge <= gs:
            continue
        if gs - cursor >= MIN_GAP_SECONDS and (pieces or gs - cursor > ABSORB_SECONDS):
            pieces.append(Span(cursor, gs, "gap", "unknown"))
        else:
            gs = cursor
        pieces.append(Span(gs, ge, "gap", reason))
        cursor = ge
    if end > cursor:
        if pieces and end - cursor <= ABSORB_SECONDS:
            last = pieces.pop()
            pieces.append(Span(last.start, end, "gap", last.reason))
        else:
            pieces.append(Span(cursor, end, "gap", "unknown"))
    merged: list[Span] = []
    for piece in pieces:
        if merged and merged[-1].reason == piece.reason:
            merged[-1] = Span(merged[-1].start, piece.end, "gap", piece.reason)
        else:
            merged.append(piece)
    return merged
