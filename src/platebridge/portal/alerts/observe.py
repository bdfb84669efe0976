"""What holds now, read from the database (and the tunnel registry) for one evaluation pass.

Three queries whatever the fleet size: the companies' rules, the live pods, their cameras. The
conditions (docs/alerts.md, "Conditions"):

* ``pod_offline``: no heartbeat for ``pod_offline_after`` (since: the last heartbeat). Pods
  that never sent one and decommissioned pods are not watched.
* A pod whose last heartbeat is older than the portal's ``offline_after`` is *frozen*: what
  its cameras, disk and tunnel do is unknown, so their incidents neither start nor end.
* ``camera_error``: the POD reports the camera in error (a wrong password, no stream, a
  stall); detail: the POD's reason (credentials already redacted by the POD and the portal).
* ``codec_unplayable``: the live output is not H.264 (``codecs`` not ``avc1.*``, or without
  ``codecs`` a video codec other than h264 that the POD does not transcode): most browsers
  cannot play it.
* ``recording_stopped``: recording is configured on but the POD says it is not recording
  (error, disk full, off).
* ``disk_low``: the recording disk's free space is below ``disk_low_percent``.
* ``tunnel_down``: a pod in ``tunnel`` mode that heartbeats but holds no tunnel on any portal.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from platebridge.portal.alerts.evaluate import Observation, Subject
from platebridge.portal.alerts.models import AlertSettings, IncidentKind
from platebridge.portal.alerts.rules import DEFAULT_RULES, AlertRules, parse_rules
from platebridge.portal.camera_media import media_item
from platebridge.portal.models import Camera, Pod

#: The tunnel registry's ``holders`` (pod → node holding its tunnel).
Holders = Callable[[list[uuid.UUID]], Awaitable[dict[uuid.UUID, str]]]

_RECORDING_DETAIL = {
    "error": "recording failed on the POD",
    "disk_full": "the POD's recording disk is full",
    "off": "recording is on but the POD is not recording",
}


@dataclass(slots=True)
class World:
    """One pass's view: the conditions that hold, the frozen pods, each company's rules."""

    holding: dict[str, Observation] = field(default_factory=dict)
    frozen_pods: set[uuid.UUID] = field(default_factory=set)
    rules: dict[uuid.UUID, AlertRules] = field(default_factory=dict)
    pods_watched: int = 0
    cameras_watched: int = 0

    def rules_of(self, company_id: uuid.UUID) -> AlertRules:
        return self.rules.get(company_id, DEFAULT_RULES)

    def add(
        self,
        kind: IncidentKind,
        company_id: uuid.UUID,
        pod_id: uuid.UUID,
        camera_id: str = "",
        *,
        since: datetime | None = None,
        detail: str = "",
    ) -> None:
        rules = self.rules_of(company_id)
        threshold = rules.threshold(kind)
        if threshold is None:
            return
        subject = Subject(kind, pod_id, camera_id)
        self.holding[subject.key] = Observation(
            subject=subject,
            company_id=company_id,
            threshold=threshold,
            recover_after=rules.recover_after,
            since=since,
            detail=detail[:500],
        )


def codec_unplayable(media_text: str | None) -> str | None:
    """Why browsers cannot play the camera's live output (None: they can, or unknown)."""
    media = media_item(media_text)
    if not media:
        return None
    codecs = media.get("codecs")
    if isinstance(codecs, str) and codecs:
        video = codecs.split(",")[0].strip()
        if video.startswith("avc1."):
            return None
        name = "H.265" if video.startswith(("hvc1.", "hev1.")) else video
        return f"the camera sends {name}, which most browsers cannot play"
    codec = media.get("video_codec")
    if isinstance(codec, str) and codec not in ("", "h264") and not media.get("transcoded"):
        name = {"hevc": "H.265", "mjpeg": "MJPEG", "mpeg4": "MPEG-4"}.get(codec, codec)
        return f"the camera sends {name}, which most browsers cannot play"
    return None


def recording_stopped(recording_text: str | None) -> str | None:
    """Why a camera that should record does not (None: it records, or recording is off)."""
    recording = media_item(recording_text)
    if not recording or recording.get("enabled") is not True:
        return None
    state = recording.get("state")
    if state == "recording" or not isinstance(state, str):
        return None
    return _RECORDING_DETAIL.get(state, f"recording state: {state}")


#: Rows between two yields to the event loop: a pass over 100,000 cameras is ~0.5 s of Python
#: (row conversion, JSON of each camera's media); the process's other requests (heartbeats,
#: listings, streams) run in between instead of waiting for the whole pass.
YIELD_EVERY = 2000


async def observe(
    session: AsyncSession,
    *,
    now: datetime,
    offline_after: float,
    holders: Holders | None,
) -> World:
    """Read one pass's :class:`World`. ``offline_after`` is the portal's own (pods older than
    it are frozen); ``holders`` None: tunnel incidents are not evaluated (kept as they are)."""
    world = World()
    for company_id, text in await session.execute(
        select(AlertSettings.company_id, AlertSettings.rules)
    ):
        world.rules[company_id] = parse_rules(text)
    pods = (
        await session.execute(
            select(
                Pod.id,
                Pod.company_id,
                Pod.last_heartbeat,
                Pod.stream_mode,
                Pod.disk_total,
                Pod.disk_free,
            ).where(Pod.last_heartbeat.is_not(None), Pod.decommissioned_at.is_(None))
        )
    ).all()
    stale = now - timedelta(seconds=offline_after)
    company_of: dict[uuid.UUID, uuid.UUID] = {}
    tunnel_pods: list[uuid.UUID] = []
    for n, (pod_id, company_id, last_heartbeat, mode, disk_total, disk_free) in enumerate(pods):
        if n % YIELD_EVERY == YIELD_EVERY - 1:
            await asyncio.sleep(0)
        if last_heartbeat is None:
            continue  # the query excludes it; the type does not know
        world.pods_watched += 1
        rules = world.rules_of(company_id)
        offline_for = (now - last_heartbeat).total_seconds()
        if rules.pod_offline_after is not None and offline_for >= rules.pod_offline_after:
            world.add("pod_offline", company_id, pod_id, since=last_heartbeat)
        if last_heartbeat < stale:
            world.frozen_pods.add(pod_id)
            continue
        company_of[pod_id] = company_id
        if (
            disk_total
            and disk_free is not None
            and disk_free * 100 < disk_total * (rules.disk_low_percent)
        ):
            free = f"{disk_free / disk_total:.0%}"
            world.add("disk_low", company_id, pod_id, detail=f"{free} of the disk is free")
        if mode == "tunnel":
            tunnel_pods.append(pod_id)
    if holders is None:
        world.frozen_pods.update(tunnel_pods)  # unknown: keep tunnel incidents as they are
    elif tunnel_pods:
        held = await holders(tunnel_pods)
        for pod_id in tunnel_pods:
            if pod_id not in held:
                detail = "the POD heartbeats but holds no tunnel"
                world.add("tunnel_down", company_of[pod_id], pod_id, detail=detail)
    cameras = await session.execute(
        select(Camera.pod_id, Camera.camera_id, Camera.status, Camera.error, Camera.media)
        .add_columns(Camera.recording)
        .where(Camera.missing_since.is_(None))
    )
    for n, (pod_id, camera_id, status, error, media, recording) in enumerate(cameras):
        if n % YIELD_EVERY == YIELD_EVERY - 1:
            await asyncio.sleep(0)
        owner = company_of.get(pod_id)
        if owner is None:
            continue  # pod frozen, never heartbeated or decommissioned
        world.cameras_watched += 1
        if status == "error":
            world.add("camera_error", owner, pod_id, camera_id, detail=error or "error")
            continue
        why = codec_unplayable(media) if status == "active" else None
        if why:
            world.add("codec_unplayable", owner, pod_id, camera_id, detail=why)
        why = recording_stopped(recording)
        if why:
            world.add("recording_stopped", owner, pod_id, camera_id, detail=why)
    return world
