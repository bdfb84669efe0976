"""``POST /api/pod/heartbeat``: authenticate the key, register/refresh the pod and its cameras.

Fast path: a heartbeat whose content (ip, port, status, firmware, cameras) has the same digest
as the last applied one, sent with a pod key, is ONE ``UPDATE pods SET last_heartbeat`` that
also checks the key. Anything else takes the slow path: one transaction that locks the pod row
first (so two heartbeats of one pod serialise instead of deadlocking), then upserts cameras
with ``INSERT … ON CONFLICT DO UPDATE`` and marks unreported cameras ``inactive``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from platebridge.core.heartbeat import (
    DEFAULT_STREAM_PORT,
    HeartbeatCamera,
    HeartbeatRequest,
)
from platebridge.core.redact import redact_text
from platebridge.portal.db import Database
from platebridge.portal.errors import ApiError
from platebridge.portal.models import ApiKey, Camera, CameraName, Pod, new_uuid
from platebridge.portal.security import new_stream_secret
from platebridge.portal.services.heartbeat_body import media_json, stored_rtsp_url, stream_url

#: Mode of a pod registered by its first heartbeat: tunnel when the POD opens one, else proxy.
DEFAULT_STREAM_MODE = "auto"


@dataclass(frozen=True, slots=True)
class HeartbeatOutcome:
    pod_id: str
    registered: bool
    stream_mode: str


# --- authentication --------------------------------------------------------------------------


# --- writing ---------------------------------------------------------------------------------


async def fast_heartbeat(
    db: Database, key_hash: bytes, pod_id: str, digest: bytes, now: datetime
) -> str | None:
    """Refresh ``last_heartbeat`` if nothing else changed and return the pod's stream mode
    (for the response's ``tunnel``); None means "take the slow path".

    One statement on the driver itself (see ``Database.pg_coalesced`` / ``sqlite_try_write``):
    it authenticates the pod key, checks pod_id and digest, and writes the timestamp. On
    PostgreSQL concurrent heartbeats share one statement (group commit, ``_FAST_SQL_PG``)."""
    if not db.is_sqlite:
        row = await db.pg_coalesced(_FAST_SQL_PG, (key_hash, pod_id, digest, now))
        return None if row is None else str(row[1])
    params = (key_hash, pod_id, digest, _sqlite_time(db)(now))
    rows: list[Any] | None = db.sqlite_try_write(_FAST_SQL_SQLITE, params)
    if rows is None:  # the write lock is taken: queue like every other writer
        rows = list(
            await db.execute_single(_FAST_UPDATE, _fast_params(key_hash, pod_id, digest, now))
        )
    return str(rows[0][1]) if len(rows) == 1 else None


def _fast_params(key_hash: bytes, pod_id: str, digest: bytes, now: datetime) -> dict[str, Any]:
    return {"b_key_hash": key_hash, "b_pod_id": pod_id, "b_digest": digest, "b_now": now}


def _sqlite_time(db: Database) -> Any:
    proc = getattr(db, "_pb_last_heartbeat_proc", None)
    if proc is None:
        proc = db.bind_processor(Pod.__table__.c.last_heartbeat)
        db._pb_last_heartbeat_proc = proc  # type: ignore[attr-defined]
    return proc


# The fast path as SQL, the same statement as _FAST_UPDATE (which the queued SQLite path and
# tests use): the key must be an unrevoked pod key, bound to this pod, with the same digest.
_FAST_SQL = (
    "UPDATE pods SET last_heartbeat = {now} WHERE pods.id = ("
    "SELECT api_keys.pod_id FROM api_keys WHERE api_keys.key_hash = {key} "
    "AND api_keys.kind = 'pod' AND api_keys.revoked_at IS NULL) "
    "AND pods.pod_id = {pod} AND pods.heartbeat_digest = {digest} "
    "RETURNING pods.id, pods.stream_mode"
)
# PostgreSQL: the same checks for a batch of heartbeats, one array per field and the
# callers' ordinals (``Database.pg_coalesced``). Plan: nested loops over the arrays with the
# key_hash and pods primary-key indexes. A pod twice in one batch updates once and answers
# once: its other heartbeat takes the slow path, which applies it in full.
_FAST_SQL_PG = (
    "UPDATE pods SET last_heartbeat = b.now "
    "FROM unnest($1::bytea[], $2::text[], $3::bytea[], $4::timestamptz[], $5::int[]) "
    "AS b(key_hash, pod_id, digest, now, n) "
    "JOIN api_keys ON api_keys.key_hash = b.key_hash AND api_keys.kind = 'pod' "
    "AND api_keys.revoked_at IS NULL "
    "WHERE pods.id = api_keys.pod_id AND pods.pod_id = b.pod_id "
    "AND pods.heartbeat_digest = b.digest "
    "RETURNING b.n, pods.stream_mode"
)
_FAST_SQL_SQLITE = _FAST_SQL.format(key="?1", pod="?2", digest="?3", now="?4")


# Built once (the queued SQLite path): constructing the statement and its cache key per
# request cost as much as the database round trip (bench/heartbeat.py profile).
_FAST_UPDATE = (
    update(Pod)
    .where(
        Pod.id
        == select(ApiKey.pod_id)
        .where(
            ApiKey.key_hash == bindparam("b_key_hash"),
            ApiKey.kind == "pod",
            ApiKey.revoked_at.is_(None),
        )
        .scalar_subquery(),
        Pod.pod_id == bindparam("b_pod_id"),
        Pod.heartbeat_digest == bindparam("b_digest"),
    )
    .values(last_heartbeat=bindparam("b_now", type_=Pod.__table__.c.last_heartbeat.type))
    .returning(Pod.id, Pod.stream_mode)
)


# --- the slow path: Core statements on the session's connection --------------------------
#
# No ORM objects (identity map, attribute instrumentation) and statements that SQLAlchemy's
# compiled cache can keep: the camera upsert is one cached statement run as an executemany
# (a multi-row VALUES built per request was compiled every time). bench/heartbeat.py's
# profile of the changed path was 57 % SQLAlchemy ORM + compile.

_KEYS = cast(Table, ApiKey.__table__)
_PODS = cast(Table, Pod.__table__)
_CAMS = cast(Table, Camera.__table__)

_KEY_BY_HASH = select(
    _KEYS.c.kind, _KEYS.c.pod_id, _KEYS.c.company_id, _KEYS.c.site_id, _KEYS.c.revoked_at
).where(_KEYS.c.key_hash == bindparam("b_key_hash"))

_POD_COLUMNS = (
    _PODS.c.id,
    _PODS.c.pod_id,
    _PODS.c.site_id,
    _PODS.c.ip_address,
    _PODS.c.stream_port,
    _PODS.c.stream_mode,
    _PODS.c.decommissioned_at,
)
_POD_BY_ID = select(*_POD_COLUMNS).where(_PODS.c.id == bindparam("b_id"))
_POD_BY_WIRE_ID = select(*_POD_COLUMNS).where(
    _PODS.c.company_id == bindparam("b_company_id"), _PODS.c.pod_id == bindparam("b_pod_id")
)
_CAMERA_UPDATE_COLUMNS = (
    "name",
    "stream_url",
    "status",
    "position",
    "error",
    "rtsp_url",
    "media",
    "sub_media",
    "recording",
)


@dataclass(frozen=True, slots=True)
class _KeyRow:
    kind: str
    pod_id: Any
    company_id: Any
    site_id: Any


async def _key_row(conn: AsyncConnection, key_hash: bytes) -> _KeyRow:
    row = (await conn.execute(_KEY_BY_HASH, {"b_key_hash": key_hash})).first()
    if row is not None and row.revoked_at is not None and row.pod_id is not None:
        await _refuse_decommissioned(conn, row.pod_id)  # its keys were revoked with it
    if row is None or row.revoked_at is not None:
        raise ApiError(401, "invalid_api_key", "API key is unknown or revoked")
    return _KeyRow(row.kind, row.pod_id, row.company_id, row.site_id)


_DECOMMISSIONED = select(_PODS.c.decommissioned_at).where(_PODS.c.id == bindparam("b_id"))


def pod_decommissioned() -> ApiError:
    return ApiError(
        403,
        "pod_decommissioned",
        "this pod was decommissioned by an admin of its company: it may not heartbeat or "
        "stream until re-enabled (which issues a new API key and stream secret)",
    )


async def _refuse_decommissioned(conn: AsyncConnection, pod_uuid: Any) -> None:
    if (await conn.execute(_DECOMMISSIONED, {"b_id": pod_uuid})).scalar() is not None:
        raise pod_decommissioned()


async def _pod_for_key(
    conn: AsyncConnection, key: _KeyRow, req: HeartbeatRequest, now: datetime
) -> tuple[Any, bool]:
    """The pod this key may heartbeat as (registering it for an enrollment key), or 403."""
    if key.kind == "pod":
        pod = (await conn.execute(_POD_BY_ID, {"b_id": key.pod_id})).first()
        if pod is None or pod.pod_id != req.pod_id:
            raise ApiError(403, "pod_mismatch", "this API key belongs to another pod_id")
        if pod.decommissioned_at is not None:
            raise pod_decommissioned()
        return pod, False
    registered = False
    params = {"b_company_id": key.company_id, "b_pod_id": req.pod_id}
    pod = (await conn.execute(_POD_BY_WIRE_ID, params)).first()
    if pod is None:
        ins = _insert_for(conn)(_PODS).values(
            id=new_uuid(),
            pod_id=req.pod_id,
            company_id=key.company_id,
            site_id=key.site_id,
            name=req.pod_id,
            status="offline",
            stream_token_secret=new_stream_secret(),
            stream_port=DEFAULT_STREAM_PORT,
            stream_mode=DEFAULT_STREAM_MODE,
            created_at=now,
        )
        ins = ins.on_conflict_do_nothing(index_elements=["company_id", "pod_id"]).returning(
            _PODS.c.id
        )
        registered = (await conn.execute(ins)).scalar_one_or_none() is not None
        pod = (await conn.execute(_POD_BY_WIRE_ID, params)).one()
    if pod.site_id != key.site_id:
        raise ApiError(
            403, "pod_in_other_site", "pod_id is registered under another site of this company"
        )
    if pod.decommissioned_at is not None:
        raise pod_decommissioned()
    return pod, registered


def _insert_for(conn: AsyncConnection) -> Any:
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


async def slow_heartbeat(
    session: AsyncSession,
    key_hash: bytes,
    req: HeartbeatRequest,
    digest: bytes | None,
    now: datetime,
    client_ip: str | None,
) -> HeartbeatOutcome:
    """Apply the whole heartbeat inside the caller's transaction."""
    conn = await session.connection()
    key = await _key_row(conn, key_hash)
    pod, registered = await _pod_for_key(conn, key, req, now)

    ip = req.ip_address or pod.ip_address or client_ip
    port = req.stream_port if "stream_port" in req.model_fields_set else pod.stream_port
    old_url = _maybe_url(pod.ip_address, pod.stream_port)
    url = _maybe_url(ip, port)
    values: dict[str, Any] = {
        "last_heartbeat": now,
        "status": req.status,
        "ip_address": ip,
        "stream_port": port,
        "heartbeat_digest": digest,
    }
    if req.firmware_version is not None:
        values["firmware_version"] = req.firmware_version
    if req.disk is not None:
        values["disk_total"], values["disk_free"] = req.disk.total, req.disk.free
    # Row lock on PostgreSQL: concurrent heartbeats of this pod queue here.
    await conn.execute(_PODS.update().where(_PODS.c.id == pod.id).values(**values))
    if req.cameras is not None:
        await _apply_cameras(conn, pod.id, req.cameras, url or "", now)
    elif url != old_url and url is not None:
        await conn.execute(
            _CAMS.update().where(_CAMS.c.pod_id == pod.id).values(stream_url=url, updated_at=now)
        )
    return HeartbeatOutcome(
        pod_id=pod.pod_id, registered=registered, stream_mode=str(pod.stream_mode)
    )


def _maybe_url(ip: str | None, port: int) -> str | None:
    try:
        return stream_url(ip, port) if ip else None
    except ValueError:
        return None


_UPSERTS: dict[str, Any] = {}
_NAMES = cast(Table, CameraName.__table__)
_KEPT_NAME = (
    select(_NAMES.c.display_name)
    .where(
        _NAMES.c.pod_id == bindparam("b_name_pod"), _NAMES.c.camera_id == bindparam("b_name_cam")
    )
    .scalar_subquery()
)


def _camera_upsert(conn: AsyncConnection) -> Any:
    """``INSERT … ON CONFLICT (pod_id, camera_id) DO UPDATE``, built once per dialect."""
    name = conn.dialect.name
    stmt = _UPSERTS.get(name)
    if stmt is None:
        # a new row (a camera reported again after an admin removed it) takes the display
        # name kept at the removal (services.camera_admin); an existing row keeps its own
        ins = _insert_for(conn)(_CAMS).values(display_name=_KEPT_NAME)
        set_ = {
            c: getattr(ins.excluded, c)
            for c in (*_CAMERA_UPDATE_COLUMNS, "updated_at", "missing_since")
        }
        stmt = _UPSERTS[name] = ins.on_conflict_do_update(
            index_elements=["pod_id", "camera_id"], set_=set_
        )
    return stmt


_MARK_INACTIVE = (
    _CAMS.update()
    .where(
        _CAMS.c.pod_id == bindparam("b_pod_id"),
        _CAMS.c.camera_id.not_in(bindparam("b_reported", expanding=True)),
        or_(_CAMS.c.status != "inactive", _CAMS.c.missing_since.is_(None)),
    )
    .values(
        status="inactive",
        updated_at=bindparam("b_now", type_=_CAMS.c.updated_at.type),
        # Not reported any more: an admin may remove it (services.pod_lifecycle).
        missing_since=func.coalesce(
            _CAMS.c.missing_since, bindparam("b_now", type_=_CAMS.c.missing_since.type)
        ),
    )
)


async def _apply_cameras(
    conn: AsyncConnection, pod_uuid: Any, cameras: list[HeartbeatCamera], url: str, now: datetime
) -> None:
    reported = sorted(cameras, key=lambda c: c.camera_id)  # fixed lock order
    if reported:
        rows = [
            {
                "id": new_uuid(),
                "pod_id": pod_uuid,
                "camera_id": c.camera_id,
                "name": c.name,
                "stream_url": url,
                "status": c.status,
                "position": c.position,
                "error": redact_text(c.error) if c.error else None,
                "rtsp_url": stored_rtsp_url(c.rtsp_url),
                "media": media_json(c.media),
                "sub_media": media_json(c.sub_media),
                "recording": media_json(c.recording),
                "created_at": now,
                "updated_at": now,
                "missing_since": None,  # reported (again): back in the lists
                "b_name_pod": pod_uuid,
                "b_name_cam": c.camera_id,
            }
            for c in reported
        ]
        await conn.execute(_camera_upsert(conn), rows)
    params = {"b_pod_id": pod_uuid, "b_reported": [c.camera_id for c in reported], "b_now": now}
    await conn.execute(_MARK_INACTIVE, params)
