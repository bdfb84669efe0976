"""The filters, sort keys and page windows of the paginated listings (``portal/listing.py``).

Order: cameras by (site name, pod_id, camera_id), pods by (site name, pod_id) — a total order
inside one company (pod_id is unique per company, camera_id per pod). A page is a keyset
window: ``(sort key) > (the cursor's key)``, ``LIMIT n + 1`` (no OFFSET: a page costs the same
at the end of the list as at the start, and rows added or removed meanwhile never make a walk
skip or repeat a row that stays).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import ColumnElement, and_, func, or_, select, tuple_

from platebridge.portal.models import Camera, CameraStatus, Community, Pod, Site, User

#: The badge a page shows (``pages/views.py``): live / offline / error, as a filter.
CameraState = Literal["live", "offline", "error"]
PodState = Literal["online", "offline", "error"]
DEFAULT_LIMIT = 100
MAX_LIMIT = 500
#: Longest ``q`` accepted (characters).
MAX_QUERY = 100


def _id_or_name(id_column: Any, name_column: Any, value: str) -> ColumnElement[bool]:
    try:
        return or_(id_column == uuid.UUID(value), name_column == value)
    except ValueError:
        return name_column == value  # type: ignore[no-any-return]


def _like_pattern(q: str) -> str:
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def text_match(q: str, *columns: Any) -> ColumnElement[bool]:
    """Case-insensitive substring match on any of ``columns``: ``lower(col) LIKE '%q%'``.

    PostgreSQL's ``lower`` folds all of Unicode (UTF-8 database); SQLite's only ASCII (a
    non-ASCII capital in a name matches only when typed the same). No index serves a substring
    match: the company scope (indexed) bounds the rows compared (bench/listing.py).
    """
    pattern = _like_pattern(q.lower())
    return or_(*(func.lower(c).like(pattern, escape="\\") for c in columns))


def _pod_offline(cutoff: datetime) -> ColumnElement[bool]:
    """``status.effective_pod_status(...) == 'offline'`` in SQL."""
    return or_(Pod.last_heartbeat.is_(None), Pod.last_heartbeat < cutoff, Pod.status == "offline")


def pod_state_filter(state: PodState, cutoff: datetime) -> ColumnElement[bool]:
    offline = _pod_offline(cutoff)
    if state == "offline":
        return offline
    if state == "error":
        return and_(~offline, Pod.status == "error")
    return and_(~offline, Pod.status != "error")


def camera_state_filter(state: CameraState, cutoff: datetime) -> ColumnElement[bool]:
    """``pages.views.camera_badge(...)`` in SQL (tests/portal/test_listing_api.py: they agree)."""
    offline = _pod_offline(cutoff)
    if state == "offline":
        return or_(offline, and_(Pod.status != "error", Camera.status == "inactive"))
    if state == "error":
        return and_(~offline, or_(Pod.status == "error", Camera.status == "error"))
    return and_(~offline, Pod.status != "error", Camera.status == "active")


#: What ``q`` searches: the camera's names and id (display_name: the admin's name, NULL matches
#: nothing), and its pod's and site's.
CAMERA_TEXT = (Camera.name, Camera.display_name, Camera.camera_id)
POD_TEXT = (Pod.name, Pod.pod_id, Site.name)


@dataclass(frozen=True, slots=True)
class Filters:
    """What a listing is narrowed to. ``status``: the camera's own status (cameras) — pods use
    ``state`` (effective status); ``state`` of cameras is the page's badge."""

    site: str | None = None
    community: str | None = None
    pod_id: str | None = None
    status: CameraStatus | None = None
    state: str | None = None
    q: str | None = None

    def scope(self, kind: str, user: User) -> str:
        """What a cursor is bound to: the listing, the company and these filters."""
        parts = [kind, str(user.company_id)]
        parts += [f"{f.name}={getattr(self, f.name) or ''}" for f in fields(self)]
        return "|".join(parts)

    def apply(
        self,
        stmt: Any,
        user: User,
        offline_after: int,
        now: datetime,
        *,
        cameras: bool,
        q_pods: ColumnElement[bool] | None = None,
    ) -> Any:
        """Add the filters to a statement joining Pod and Site (and Camera for ``cameras``).
        ``q_pods``: for cameras, "the camera's pod matches ``q``" as a condition on the camera
        alone (its pod id among the matching pods'), instead of comparing the pod's and site's
        names again on every camera row."""
        if self.site is not None:
            stmt = stmt.where(_id_or_name(Site.id, Site.name, self.site))
        if self.community is not None:
            wanted = select(Community.id).where(
                Community.company_id == user.company_id,
                _id_or_name(Community.id, Community.name, self.community),
            )
            stmt = stmt.where(Site.community_id.in_(wanted.scalar_subquery()))
        if self.pod_id is not None:
            stmt = stmt.where(Pod.pod_id == self.pod_id)
        cutoff = now - timedelta(seconds=offline_after)
        if cameras:
            if self.status is not None:
                stmt = stmt.where(Camera.status == self.status)
            if self.state is not None:
                stmt = stmt.where(camera_state_filter(_camera_state(self.state), cutoff))
            if self.q and q_pods is not None:  # the pods' own match computed once per pod
                stmt = stmt.where(or_(text_match(self.q, *CAMERA_TEXT), q_pods))
            elif self.q:
                stmt = stmt.where(text_match(self.q, *CAMERA_TEXT, *POD_TEXT))
        else:
            if self.state is not None:
                stmt = stmt.where(pod_state_filter(_pod_state(self.state), cutoff))
            if self.q:
                stmt = stmt.where(text_match(self.q, *POD_TEXT))
        return stmt


def _camera_state(value: str) -> CameraState:
    for state in ("live", "offline", "error"):
        if value == state:
            return state
    raise ValueError(value)


def _pod_state(value: str) -> PodState:
    for state in ("online", "offline", "error"):
        if value == state:
            return state
    raise ValueError(value)


CAMERA_ORDER = (Site.name, Pod.pod_id, Camera.camera_id)
POD_ORDER = (Site.name, Pod.pod_id)


def after_key(stmt: Any, order: tuple[Any, ...], key: tuple[str, ...] | None) -> Any:
    """Rows strictly after ``key`` in ``order`` (a row-value comparison; both databases)."""
    if key is None:
        return stmt
    return stmt.where(tuple_(*order) > tuple_(*key))
