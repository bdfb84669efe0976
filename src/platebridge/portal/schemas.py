"""The JSON bodies the portal's API answers with, as TypedDicts for the OpenAPI document.

Routes name them as ``response_model`` so ``/api/openapi.json`` describes every response body;
the listing routes that return pre-serialised JSON (``orjson``) are documented by them without
being re-validated. Errors are ``core.errors.ErrorBody`` on every route.
"""

from __future__ import annotations

from typing import Literal

from typing_extensions import TypedDict

from platebridge.portal.models import AuditAction, AuditMethod, CameraStatus, Role, StreamMode

PodStatus = Literal["online", "offline", "error"]


class LoginResult(TypedDict):
    access_token: str
    token_type: Literal["bearer"]
    expires_in: int


class LogoutResult(TypedDict):
    ok: bool


class Me(TypedDict):
    id: str
    email: str
    role: Role
    company_id: str


class Health(TypedDict):
    status: Literal["ok", "error"]
    database: Literal["ok", "unreachable"]


class CameraMediaItem(TypedDict, total=False):
    """What a camera sends, as its POD last reported it (``core.heartbeat.CameraMedia``): only
    the fields the POD knew are present (docs/portal.md, "Heartbeat fields")."""

    video_codec: str
    video_profile: str
    width: int
    height: int
    fps: float
    keyframe_interval: float
    bitrate_kbps: int
    audio_codec: str
    audio: Literal["aac", "converted", "dropped", "none"]
    note: str
    codecs: str
    transcoded: bool


class CameraRecordingItem(TypedDict, total=False):
    """The camera's recording on its POD as last reported (``core.heartbeat.CameraRecording``;
    docs/recording.md): times to the minute, bytes to 2 significant digits."""

    enabled: bool
    state: Literal["recording", "off", "error", "disk_full"]
    oldest: float | None
    newest: float | None
    bytes: int
    gaps_24h: int


class PodDiskItem(TypedDict):
    """The POD's recording filesystem, bytes (free to 2 significant digits)."""

    total: int
    free: int


class CameraItem(TypedDict):
    """A camera as ``GET /api/cameras`` lists it (the spec's fields and the portal's own)."""

    id: str
    name: str
    stream_url: str
    status: CameraStatus
    pod_id: str
    pod_name: str
    pod_ip: str | None
    position: str
    pod_status: PodStatus
    streamable: bool
    stream_mode: StreamMode
    direct_url: str | None
    #: The live fMP4 WebSocket (docs/live.md): the portal's path, or in direct mode the POD's
    #: ``ws(s)://…/live/{camera}/ws?token=…``; ``null`` when there is none.
    live_url: str | None
    error: str | None
    site: str
    site_id: str
    last_heartbeat: str | None
    #: What the camera (and its substream) sends; null when its POD does not report it.
    media: CameraMediaItem | None
    sub_media: CameraMediaItem | None
    #: The camera's recording and its POD's disk (null: the POD does not report them).
    recording: CameraRecordingItem | None
    pod_disk: PodDiskItem | None


class CameraListing(TypedDict):
    """One page (docs/portal.md "Pagination"): ``next_cursor`` continues it (null: the last
    page), ``total`` counts every camera the filters match, ``limit`` is the page size."""

    cameras: list[CameraItem]
    next_cursor: str | None
    total: int
    limit: int


class CameraCounts(TypedDict):
    total: int
    active: int
    inactive: int
    error: int


class PodItem(TypedDict):
    pod_id: str
    name: str
    status: PodStatus
    ip_address: str | None
    stream_port: int
    stream_mode: StreamMode
    network: str | None
    unavailable_reason: str | None
    tunnel_connected: bool
    firmware_version: str | None
    last_heartbeat: str | None
    site: str
    site_id: str
    cameras: CameraCounts


class PodListing(TypedDict):
    """One page, as :class:`CameraListing`."""

    pods: list[PodItem]
    next_cursor: str | None
    total: int
    limit: int


class AuditEventItem(TypedDict):
    id: str
    at: str
    user_id: str | None
    user_email: str | None
    pod_id: str
    camera_id: str
    action: AuditAction
    method: AuditMethod
    client_ip: str | None
    #: Footage and share rows: the recorded range (epoch seconds), else None.
    range_start: float | None
    range_end: float | None
    #: Share rows: the share link's id.
    share_id: str | None


class FootageToken(TypedDict):
    """``POST /api/footage-token``: a footage token and the URLs that carry it (the POD's own
    for ``direct``, else the portal's relay routes). ``media_url`` takes ``&start=…``
    (``&duration=…``) appended; ``export_url`` is for the whole range (≤ 30 min exports)."""

    token: str
    expires_at: str
    method: AuditMethod
    recordings_url: str
    media_url: str
    export_url: str


class AuditListing(TypedDict):
    events: list[AuditEventItem]


class StreamToken(TypedDict):
    """``POST /api/pod/stream-token``: a viewer token and the URLs that carry it."""

    token: str
    expires_at: str
    expires_in: int
    stream_mode: AuditMethod
    proxy_url: str
    direct_url: str | None
    #: The live fMP4 WebSocket with the token: the portal's path (``stream_mode`` proxy or
    #: tunnel), or the POD's ``ws(s)://…/live/{camera}/ws?token=…`` in direct mode.
    live_url: str | None
