"""Files on disk → index rows: index closed files, follow the growing one, repair torn ones.

A file ffmpeg closed is indexed whole. The file ffmpeg is writing (the newest of its camera
while ffmpeg runs) is indexed up to its last whole fragment as ``complete=False`` and never
touched. Any other file that is not whole — cut by ``kill -9`` of ffmpeg or the agent, or a
power loss — is truncated after its last whole fragment (a torn fragment is at most ~1 s of
video, the one ffmpeg had not flushed at most ~1 s more) and indexed; a file without a single
whole fragment is deleted. Synchronous: the agent runs it in a thread.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from platebridge.pod.recording.index import RecordedFile, RecordingIndex
from platebridge.pod.recording.mp4scan import ScannedFile, scan_file

log = logging.getLogger("platebridge.pod.recording")

DAY_DIR = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
FILE_NAME = re.compile(r"^[0-9]{6}(-[0-9]{1,4})?\.mp4$")


def camera_files(camera_dir: Path, days: int | None = None) -> list[Path]:
    """The camera's recorded files, oldest first (names sort by UTC time); ``days``: only the
    newest that many day directories."""
    try:
        day_dirs = sorted(d for d in os.listdir(camera_dir) if DAY_DIR.match(d))
    except OSError:
        return []
    if days is not None:
        day_dirs = day_dirs[-days:]
    files: list[Path] = []
    for day in day_dirs:
        try:
            names = sorted(n for n in os.listdir(camera_dir / day) if FILE_NAME.match(n))
        except OSError:
            continue
        files.extend(camera_dir / day / n for n in names)
    return files


def _row(camera_id: str, path: Path, scanned: ScannedFile, complete: bool) -> RecordedFile | None:
    span = scanned.media_span()
    if span is None:
        return None
    offset = scanned.wall_offset()
    if offset is None:  # no prft (not written by this agent): the file's mtime is its end
        offset = path.stat().st_mtime - span[1]
    return RecordedFile(
        camera_id=camera_id,
        path=path,
        start=round(span[0] + offset, 3),
        end=round(span[1] + offset, 3),
        size=scanned.whole_size,
        keyframes=scanned.keyframes(offset),
        init_size=scanned.init_size,
        complete=complete,
    )


def index_file(
    index: RecordingIndex, camera_id: str, path: Path, growing: bool = False
) -> RecordedFile | None:
    """Index ``path`` (see the module doc); the row put, or None (nothing whole: deleted)."""
    try:
        scanned = scan_file(path)
    except OSError:
        return None
    if growing:
        row = _row(camera_id, path, scanned, complete=False)
        if row is not None:
            index.put(row)
        return row
    row = _row(camera_id, path, scanned, complete=True)
    if row is None or not row.keyframes:
        log.warning("recording %s: no whole fragment in %s, deleted", camera_id, path.name)
        index.remove([path])
        path.unlink(missing_ok=True)
        return None
    if scanned.whole_size < scanned.size:
        lost = scanned.size - scanned.whole_size
        log.warning("recording %s: %s was cut, %d bytes trimmed", camera_id, path.name, lost)
        os.truncate(path, scanned.whole_size)
    index.put(row)
    return row


def scan_camera(
    index: RecordingIndex,
    camera_id: str,
    camera_dir: Path,
    writing: bool,
    days: int | None = None,
) -> int:
    """Bring the index up to date with the camera's files; ``writing``: ffmpeg is running, its
    newest file is growing. Returns the number of files (re)indexed."""
    files = camera_files(camera_dir, days)
    known = index.known(files)
    growing = files[-1] if writing and files else None
    done = 0
    for path in files:
        if known.get(path) and path != growing:
            continue  # closed and indexed
        index_file(index, camera_id, path, growing=path == growing)
        done += 1
    return done
