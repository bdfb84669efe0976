"""Recent JPEG per camera: ffmpeg decodes the first frame of the newest segment, cached briefly."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

from platebridge.core.aio import within
from platebridge.pod.childproc import die_with_parent
from platebridge.pod.ffmpeg import snapshot_argv

CACHE_SECONDS = 3.0
TIMEOUT = 10.0


class SnapshotError(Exception):
    pass


class Snapshotter:
    def __init__(self, ffmpeg_path: str) -> None:
        self.ffmpeg_path = ffmpeg_path
        self._cache: dict[str, tuple[float, bytes]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def get(self, camera_id: str, segment: Path) -> bytes:
        lock = self._locks.setdefault(camera_id, asyncio.Lock())
        async with lock:
            cached = self._cache.get(camera_id)
            if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
                return cached[1]
            jpeg = await self._extract(segment)
            self._cache[camera_id] = (time.monotonic(), jpeg)
            return jpeg

    async def _extract(self, segment: Path) -> bytes:
        try:
            proc = await asyncio.create_subprocess_exec(
                *snapshot_argv(self.ffmpeg_path, segment),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        except OSError as exc:
            raise SnapshotError("cannot run ffmpeg") from exc
        try:
            out, _ = await within(proc.communicate(), TIMEOUT)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise SnapshotError("snapshot timed out") from None
        finally:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if proc.returncode != 0 or not out.startswith(b"\xff\xd8"):
            raise SnapshotError("could not decode a frame")
        return out
