"""Export a range as one MP4: ffmpeg's ``concat`` demuxer over the recorded files in the
range, stream copy, ``+faststart``.

The plan and the argv are pure (:func:`plan_export`, :func:`concat_list`,
:func:`export_argv`); :func:`run_export` runs ffmpeg (bounded in time) into a file it creates.

Cutting with stream copy: ``-ss`` before the input seeks to the keyframe at or before the
wanted start and ffmpeg keeps the frames from there, marked to be skipped by an edit list, so
the file decodes from its first frame and plays (and ffprobe measures) exactly ``-t`` seconds.
The concat demuxer puts the files end to end (a gap between two files is not in the export):
``-ss`` is the wanted start's distance from the first file's start, ``-t`` the recorded
seconds within the range.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from platebridge.core.aio import within
from platebridge.pod.recording.index import RecordedFile

#: An export (≤ 30 min, stream copy, local disk) that takes longer than this is stuck.
EXPORT_TIMEOUT = 300.0


@dataclass(frozen=True)
class ExportPlan:
    files: tuple[RecordedFile, ...]
    seek: float  # -ss: seconds into the concatenation
    duration: float  # -t: recorded seconds within the range


def plan_export(files: Sequence[RecordedFile], start: float, end: float) -> ExportPlan | None:
    """The files overlapping ``[start, end)`` (by start) and the cut; None when none does."""
    chosen = sorted((f for f in files if f.end > start and f.start < end), key=lambda f: f.start)
    if not chosen:
        return None
    recorded = sum(min(f.end, end) - max(f.start, start) for f in chosen)
    seek = max(0.0, start - chosen[0].start)
    return ExportPlan(tuple(chosen), round(seek, 3), round(recorded, 3))


def _quote(path: Path) -> str:
    """A concat-list path: single-quoted, ``'`` written as ``'\\''``."""
    return "'" + str(path).replace("'", "'\\''") + "'"


def concat_list(plan: ExportPlan) -> str:
    """The concat demuxer's list file (``ffconcat version 1.0``)."""
    lines = ["ffconcat version 1.0", *(f"file {_quote(f.path)}" for f in plan.files)]
    return "\n".join(lines) + "\n"


def export_argv(ffmpeg: str, plan: ExportPlan, list_path: Path, out: Path) -> list[str]:
    """ffmpeg: the concat list in, one ``+faststart`` MP4 out (every stream copied)."""
    return [
        ffmpeg,
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "error",
        "-y",
        "-ss",
        f"{plan.seek:.3f}",
        "-t",
        f"{plan.duration:.3f}",
        "-f",
        "concat",
        "-safe",
        "0",
        "-i",
        str(list_path),
        "-map",
        "0",
        "-c",
        "copy",
        "-movflags",
        "+faststart",
        "-f",
        "mp4",
        str(out),
    ]


class ExportError(Exception):
    """ffmpeg failed (the message is ffmpeg's last line, without paths)."""


async def run_export(ffmpeg: str, plan: ExportPlan, work: Path, name: str) -> Path:
    """Write the export to ``work/<name>.mp4`` and return it (the list file is removed)."""
    list_path, out = work / f"{name}.txt", work / f"{name}.mp4"
    await asyncio.to_thread(_write_list, list_path, concat_list(plan))
    try:
        proc = await asyncio.create_subprocess_exec(
            *export_argv(ffmpeg, plan, list_path, out),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            _, err = await within(proc.communicate(), EXPORT_TIMEOUT)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise
    finally:
        await asyncio.to_thread(list_path.unlink, True)
    if proc.returncode != 0 or not await asyncio.to_thread(out.exists):
        await asyncio.to_thread(out.unlink, True)
        last = err.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
        raise ExportError(last[0].replace(str(work), "…"))
    return out


def _write_list(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, "utf-8")


def sweep(work: Path, older_than: float, now: float) -> None:
    """Remove exports left behind (by a crash) in ``work``."""
    with contextlib.suppress(OSError):
        for entry in os.scandir(work):
            with contextlib.suppress(OSError):
                if entry.stat().st_mtime < now - older_than:
                    os.unlink(entry.path)
