"""Retention: delete the oldest footage by age and by free space. Synchronous (run in a thread).

By age: a camera's files that ended more than its ``retention_days`` (else the POD's) ago. By
space: while the recording filesystem has less free than the floor — the larger of
``retention_min_free_bytes`` and ``retention_min_free_percent`` of its size — plus the
headroom the agent expects to write before the next pass, the oldest closed files of any
camera go first. A file ffmpeg is still writing is never deleted. When nothing is left to
delete and the disk is still below the floor, the pass says so (``short``): recording stops
(state ``disk_full``) until there is room again; live view is never touched.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from platebridge.pod.config import PodConfig
from platebridge.pod.recording.index import RecordedFile, RecordingIndex

log = logging.getLogger("platebridge.pod.recording")

BATCH = 200


@dataclass(frozen=True)
class DiskUsage:
    total: int
    free: int


@dataclass(frozen=True)
class RetentionResult:
    deleted: int
    freed: int
    disk: DiskUsage
    floor: int
    #: Still below the floor with nothing left to delete.
    short: bool


def disk_usage(path: Path) -> DiskUsage:
    st = os.statvfs(path)
    return DiskUsage(st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize)


def floor_bytes(config: PodConfig, total: int) -> int:
    return max(
        config.retention_min_free_bytes, int(total * config.retention_min_free_percent / 100)
    )


def delete_files(index: RecordingIndex, files: Iterable[RecordedFile]) -> tuple[int, int]:
    """Unlink the files (and their day directory once empty), drop their rows."""
    count = freed = 0
    gone: list[Path] = []
    for f in files:
        try:
            size = f.path.stat().st_blocks * 512
            f.path.unlink()
        except FileNotFoundError:
            size = 0
        except OSError as exc:
            log.warning("recording: cannot delete %s: %s", f.path, exc.strerror)
            continue
        gone.append(f.path)
        count, freed = count + 1, freed + size
        with contextlib.suppress(OSError):
            f.path.parent.rmdir()  # only when empty
    index.remove(gone)
    return count, freed


def _by_age(index: RecordingIndex, config: PodConfig, now: float) -> tuple[int, int]:
    count = freed = 0
    for camera in config.cameras:
        days = camera.retention_days or config.retention_days
        cutoff = now - days * 86400
        while batch := [f for f in index.older_than(camera.camera_id, cutoff, BATCH) if f.complete]:
            n, b = delete_files(index, batch)
            count, freed = count + n, freed + b
            if n < len(batch):
                break  # some could not be deleted: try again next pass
    return count, freed


def retention_pass(
    index: RecordingIndex, config: PodConfig, headroom: int = 0, now: float | None = None
) -> RetentionResult:
    """One pass (see the module doc); ``headroom``: bytes expected before the next pass."""
    now = time.time() if now is None else now
    before = index.oldest(1)
    count, freed = _by_age(index, config, now)
    disk = disk_usage(config.recording_dir)
    floor = floor_bytes(config, disk.total)
    while disk.free < floor + headroom:
        batch = [f for f in index.oldest(BATCH) if f.complete]
        if not batch:
            break
        need = floor + headroom - disk.free
        chosen, planned = [], 0
        for f in batch:
            chosen.append(f)
            planned += f.size
            if planned >= need:
                break
        n, b = delete_files(index, chosen)
        count, freed = count + n, freed + b
        disk = disk_usage(config.recording_dir)
        if n == 0:
            break
    if count:
        first = before[0].path.name if before else "?"
        log.info(
            "recording: retention deleted %d file(s) from %s on, %d bytes", count, first, freed
        )
    return RetentionResult(count, freed, disk, floor, disk.free < floor)
