"""Retention on a real, small filesystem (a size-limited tmpfs this test mounts): by age per
camera, by space oldest-first across cameras, never the file ffmpeg is still writing, and
``short`` when nothing is left to delete."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from platebridge.pod.config import PodConfig, load_config
from platebridge.pod.recording.index import RecordedFile, RecordingIndex
from platebridge.pod.recording.retention import disk_usage, retention_pass
from tests.support.builders import pod_config, write_pod_config
from tests.support.tmpfs import small_tmpfs

pytestmark = pytest.mark.e2e  # mounts a tmpfs (a process)

MIB = 1024 * 1024
T0 = 1_790_000_000.0


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs of our own."""
    with small_tmpfs(tmp_path / "fs", 16) as mount:
        yield mount


def _config(tmp: Path, fs: Path, **overrides: object) -> PodConfig:
    raw = pod_config(tmp, "rtsp://127.0.0.1:1/cam", recording_dir=str(fs), **overrides)
    raw["cameras"] = [
        {"camera_id": "a", "name": "A", "rtsp_url": "rtsp://127.0.0.1:1/a", "retention_days": 2},
        {"camera_id": "b", "name": "B", "rtsp_url": "rtsp://127.0.0.1:1/b"},
    ]
    for key in ("camera_id", "camera_name", "camera_rtsp_url", "camera_position"):
        raw.pop(key)
    return load_config(write_pod_config(tmp, raw))


def _write(
    index: RecordingIndex, fs: Path, cam: str, start: float, size: int, complete: bool = True
) -> RecordedFile:
    path = fs / cam / "day" / f"{start:.0f}.mp4"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\0" * size)
    file = RecordedFile(cam, path, start, start + 60, size, ((start, 1000),), 1000, complete)
    index.put(file)
    return file


def test_by_age_per_camera_and_pod_wide(tmp_path: Path, small_fs: Path) -> None:
    config = _config(
        tmp_path,
        small_fs,
        retention_days=5,
        retention_min_free_bytes=0,
        retention_min_free_percent=0,
    )
    index = RecordingIndex(small_fs / "index.sqlite3")
    day = 86400.0
    now = T0 + 10 * day
    a_old = _write(index, small_fs, "a", now - 3 * day, 1000)  # camera a keeps 2 days
    a_new = _write(index, small_fs, "a", now - 1 * day, 1000)
    b_3d = _write(index, small_fs, "b", now - 3 * day, 1000)  # the POD keeps 5 days
    b_6d = _write(index, small_fs, "b", now - 6 * day, 1000)
    result = retention_pass(index, config, now=now)
    assert result.deleted == 2 and not result.short
    assert not a_old.path.exists() and not b_6d.path.exists()
    assert a_new.path.exists() and b_3d.path.exists()
    assert index.paths() == {a_new.path, b_3d.path}
    index.close()


def test_by_space_oldest_first_never_the_growing_file(tmp_path: Path, small_fs: Path) -> None:
    config = _config(
        tmp_path, small_fs, retention_min_free_bytes=6 * MIB, retention_min_free_percent=0
    )
    index = RecordingIndex(small_fs / "index.sqlite3")
    files = [
        _write(index, small_fs, cam, T0 + i * 60, 2 * MIB)
        for i, cam in enumerate(["a", "b", "a", "b", "a"])
    ]
    growing = _write(index, small_fs, "b", T0 - 600, 1 * MIB, complete=False)  # oldest start
    before = disk_usage(small_fs)
    assert before.free < 6 * MIB  # 11 MiB written on 16 MiB
    result = retention_pass(index, config, now=T0 + 400)
    after = disk_usage(small_fs)
    assert after.free >= 6 * MIB and not result.short
    assert growing.path.exists()  # ffmpeg is still writing it
    gone = [f for f in files if not f.path.exists()]
    kept = [f for f in files if f.path.exists()]
    assert gone and kept
    assert max(f.start for f in gone) < min(f.start for f in kept)  # oldest first, any camera
    assert index.paths() == {f.path for f in kept} | {growing.path}
    # with headroom for what will be written before the next pass, more goes
    result = retention_pass(index, config, headroom=3 * MIB, now=T0 + 400)
    assert disk_usage(small_fs).free >= 9 * MIB and result.deleted >= 1
    index.close()


def test_short_when_nothing_left_to_delete(tmp_path: Path, small_fs: Path) -> None:
    config = _config(
        tmp_path, small_fs, retention_min_free_bytes=0, retention_min_free_percent=80
    )  # floor 12.8 MiB of 16
    index = RecordingIndex(small_fs / "index.sqlite3")
    _write(index, small_fs, "a", T0, 2 * MIB)
    (small_fs / "not-footage.bin").write_bytes(b"\0" * (4 * MIB))  # something else fills it
    growing = _write(index, small_fs, "a", T0 + 60, 1 * MIB, complete=False)
    result = retention_pass(index, config, now=T0 + 120)
    assert result.short and result.deleted == 1
    assert result.floor == int(16 * MIB * 0.8)
    assert growing.path.exists() and (small_fs / "not-footage.bin").exists()
    index.close()
