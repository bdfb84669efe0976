"""``platebridge-pod check``: one line per check, so a field technician sees what is wrong."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass

from platebridge.core.aio import within
from platebridge.core.http_client import new_async_client
from platebridge.core.redact import redact_text
from platebridge.pod.config import CameraConfig, PodConfig
from platebridge.pod.ffmpeg import probe_argv
from platebridge.pod.heartbeat import build_payload, send_heartbeat
from platebridge.pod.supervisor import CameraState


@dataclass(frozen=True)
class CheckLine:
    ok: bool
    name: str
    detail: str

    def render(self) -> str:
        return f"{'OK  ' if self.ok else 'FAIL'} {self.name}: {self.detail}"


async def _run(argv: list[str], limit: float) -> tuple[int | None, str, str]:
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as exc:
        return None, "", exc.strerror or str(exc)
    try:
        out, err = await within(proc.communicate(), limit)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        return None, "", f"timed out after {limit:.0f} s"
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


async def check_ffmpeg(config: PodConfig) -> CheckLine:
    if shutil.which(config.ffmpeg_path) is None:
        return CheckLine(False, "ffmpeg", f"{config.ffmpeg_path!r} not found on PATH")
    code, out, err = await _run([config.ffmpeg_path, "-hide_banner", "-version"], 10)
    first = (out.splitlines() or ["?"])[0]
    return CheckLine(code == 0, "ffmpeg", first if code == 0 else err.strip()[:200])


async def check_camera(config: PodConfig, camera: CameraConfig) -> CheckLine:
    name = f"camera {camera.camera_id}"
    argv = probe_argv(config.ffprobe_path, camera, config.rtsp_timeout)
    code, out, err = await _run(argv, config.rtsp_timeout * 2 + 5)
    if code == 0 and out.strip():
        codec, _, size = out.strip().splitlines()[0].partition(",")
        return CheckLine(True, name, f"reachable, {codec} {size.replace(',', 'x')}")
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    reason = lines[-1] if lines else f"ffprobe exited with {code}"
    return CheckLine(False, name, redact_text(reason, config.secrets)[:300])


async def check_portal(config: PodConfig, cameras: list[CheckLine]) -> CheckLine:
    states = {
        cam.camera_id: CameraState(
            cam.camera_id,
            cam.name,
            "active" if line.ok else "error",
            None if line.ok else line.detail,
        )
        for cam, line in zip(config.cameras, cameras, strict=True)
    }
    payload = build_payload(config, states)
    async with new_async_client(
        timeout=config.heartbeat_timeout, component="pod", verify=config.portal_verify()
    ) as client:
        result = await send_heartbeat(client, config, payload)
    detail = result.message
    if result.outcome == "ok":
        detail = f"{config.portal_url} reachable, key accepted"
    return CheckLine(result.outcome == "ok", "portal", detail)


async def run_checks(config: PodConfig, emit: Callable[[CheckLine], None]) -> bool:
    lines = [
        CheckLine(True, "config", f"valid, pod {config.pod_id}, {len(config.cameras)} camera(s)")
    ]
    emit(lines[0])
    lines.append(await check_ffmpeg(config))
    emit(lines[-1])
    cams = await asyncio.gather(*(check_camera(config, c) for c in config.cameras))
    for line in cams:
        emit(line)
    lines.extend(cams)
    lines.append(await check_portal(config, list(cams)))
    emit(lines[-1])
    return all(line.ok for line in lines)
