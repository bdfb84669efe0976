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

from sqlalchemy import ColumnElement, and_, any_, bindparam, func, or_, select, true, tuple_

from platebridge.portal.models import Camera, CameraStatus, Community, Pod, Site, User
from platebridge.portal.scoping import company_camera_pods

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


def _like_any(pattern: Any, *columns: Any) -> ColumnElement[bool]:
    return or_(*(func.lower(c).like(pattern, escape="\\") for c in columns))


def text_match(q: str, *columns: Any) -> ColumnElement[bool]:
    """Case-insensitive substring match on any of ``columns``: ``lower(col) LIKE '%q%'``.

    PostgreSQL's ``lower`` folds all of Unicode (UTF-8 database); SQLite's only ASCII (a
    non-ASCII capital in a name matches only when typed the same). No index serves a substring
    match: the company scope (indexed) bounds the rows compared (bench/listing.py).
    """
    return _like_any(_like_pattern(q.lower()), *columns)


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


def camera_state_filter(
    state: CameraState,
    cutoff: datetime | Any,
    *,
    pod_status: Any = Pod.status,
    last_heartbeat: Any = Pod.last_heartbeat,
) -> ColumnElement[bool]:
    """``pages.views.camera_badge(...)`` in SQL (tests/portal/test_listing_api.py: they agree).
    ``pod_status``/``last_heartbeat``: the pod's columns as the statement names them (the
    camera page reads them from its pods subquery)."""
    offline = or_(last_heartbeat.is_(None), last_heartbeat < cutoff, pod_status == "offline")
    if state == "offline":
        return or_(offline, and_(pod_status != "error", Camera.status == "inactive"))
    if state == "error":
        return and_(~offline, or_(pod_status == "error", Camera.status == "error"))
    return and_(~offline, pod_status != "error", Camera.status == "active")


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

#: The camera columns a page reads in its LATERAL subquery (PostgreSQL).
_PAGE_CAMERA_COLUMNS = (
    Camera.camera_id,
    Camera.display_name,
    Camera.name,
    Camera.stream_url,
    Camera.status,
    Camera.position,
    Camera.error,
    Camera.media,
    Camera.sub_media,
    Camera.recording,
)

#: The pod columns a camera page shows, read once per pod in the page's pods subquery.
_PAGE_POD_COLUMNS = (
    Pod.id.label("pod_uuid"),
    Pod.pod_id,
    Pod.name.label("pod_name"),
    Pod.ip_address,
    Pod.status.label("pod_reported_status"),
    Pod.last_heartbeat,
    Pod.stream_mode,
    Site.id.label("site_uuid"),
    Site.name.label("site_name"),
    Pod.disk_total,
    Pod.disk_free,
)


CountMode = Literal["none", "window", "pods"]
#: Built statements by shape (which filters, cursor or not, count, dialect): building one
#: (subquery column proxies, coercions) was ~13 % of a page's CPU in the portal's profile;
#: the values are bound per request. Finite: a few hundred shapes at most.
_STATEMENTS: dict[tuple[Any, ...], Any] = {}


def _id_or_name_kind(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        uuid.UUID(value)
    except ValueError:
        return "name"
    return "id"


def _by_id_or_name(id_column: Any, name_column: Any, kind: str, name: str) -> Any:
    by_name = name_column == bindparam(f"{name}_name")
    return or_(id_column == bindparam(f"{name}_id"), by_name) if kind == "id" else by_name


def camera_page_query(
    filters: Filters,
    company_id: uuid.UUID,
    cutoff: datetime,
    after: tuple[str, ...] | None,
    want: int | None,
    count: CountMode,
    *,
    lateral: bool,
) -> tuple[Any, dict[str, Any]]:
    """The statement for a page of cameras (``listing.camera_page``) and its parameters.
    Rows in the order ``listing._camera_items`` unpacks (+ the total unless ``count`` is
    ``none``). See :func:`_camera_page_statement`."""
    site, community = _id_or_name_kind(filters.site), _id_or_name_kind(filters.community)
    shape = (
        lateral,
        after is not None,
        want is None,
        count,
        site,
        community,
        filters.pod_id is not None,
        filters.status is not None,
        filters.state,
        bool(filters.q),
    )
    stmt = _STATEMENTS.get(shape)
    if stmt is None:
        stmt = _STATEMENTS[shape] = _camera_page_statement(*shape)
    params: dict[str, Any] = {"b_company": company_id, "b_cutoff": cutoff}
    for name, value, kind in (
        ("b_site", filters.site, site),
        ("b_comm", filters.community, community),
    ):
        if value is not None:
            params[f"{name}_name"] = value
            if kind == "id":
                params[f"{name}_id"] = uuid.UUID(value)
    if filters.pod_id is not None:
        params["b_pod_id"] = filters.pod_id
    if filters.status is not None:
        params["b_status"] = filters.status
    if filters.q:
        params["b_q"] = _like_pattern(filters.q.lower())
    if after is not None:
        params.update(b_k1=after[0], b_k2=after[1], b_k3=after[2])
    if want is not None:
        params.update(b_want=want, b_pods=want + 1)
    return stmt, params


def _camera_page_statement(
    lateral: bool,
    has_after: bool,
    unlimited: bool,
    count: CountMode,
    site: str | None,
    community: str | None,
    pod_id: bool,
    status: bool,
    state: str | None,
    q: bool,
) -> Any:
    """One statement for a page of cameras, values as bound parameters (``b_…``).

    Pods first, inside the statement: the company's pods (``scoping.company_camera_pods``)
    from the cursor's pod on, in listing order, are a subquery; the pods' and sites' names are
    compared with ``q`` there, once per pod (``named``).

    * ``lateral`` (PostgreSQL): each pod's cameras are a ``LATERAL`` subquery (one probe of
      the ``(pod_id, …)`` index per pod, in pod order) and the page's ``LIMIT`` stops the
      nested loop after the pods it needs (an incremental sort on the presorted pod key). A
      plain join let the planner hash-join a sequential scan of all 100,000 cameras (a search:
      16.6 ms instead of 4.7; a middle page 14 ms instead of 1; docs/performance.md).
    * otherwise (SQLite): without a text search or ``state`` filter the subquery is limited
      to ``want + 1`` pods that have a matching camera (``EXISTS``), then joined.

    ``count``: ``window`` adds ``count(*) OVER ()`` (the statement reads every matching camera
    anyway), ``pods`` the sum over the filtered pods of their cameras' counts (one index probe
    per pod, a plan that does not depend on statistics), ``none`` nothing.
    """
    pods = company_camera_pods(bindparam("b_company"))
    if site is not None:
        pods = pods.where(_by_id_or_name(Site.id, Site.name, site, "b_site"))
    if community is not None:
        wanted = select(Community.id).where(
            Community.company_id == bindparam("b_company"),
            _by_id_or_name(Community.id, Community.name, community, "b_comm"),
        )
        pods = pods.where(Site.community_id.in_(wanted.scalar_subquery()))
    if pod_id:
        pods = pods.where(Pod.pod_id == bindparam("b_pod_id"))
    pattern: Any = bindparam("b_q")
    cols: tuple[Any, ...] = _PAGE_POD_COLUMNS
    if q:
        cols = (*cols, _like_any(pattern, *POD_TEXT).label("named"))
    pod_rows = pods.with_only_columns(*cols)
    key: tuple[Any, ...] = (bindparam("b_k1"), bindparam("b_k2"), bindparam("b_k3"))
    if has_after:
        pod_rows = pod_rows.where(tuple_(*POD_ORDER) >= tuple_(*key[:2]))
    if not lateral and not unlimited and not (q or state):
        probe = Camera.__table__.alias("probe")
        has = select(probe.c.pod_id).where(probe.c.pod_id == Pod.id)  # index-only
        if status:
            has = has.where(probe.c.status == bindparam("b_status"))
        pod_rows = pod_rows.where(has.exists()).limit(bindparam("b_pods"))
    pp = pod_rows.order_by(*POD_ORDER).subquery("pp")
    where: list[Any] = []
    if status:
        where.append(Camera.status == bindparam("b_status"))
    if state is not None:
        where.append(
            camera_state_filter(
                _camera_state(state),
                bindparam("b_cutoff", type_=Pod.last_heartbeat.type),
                pod_status=pp.c.pod_reported_status,
                last_heartbeat=pp.c.last_heartbeat,
            )
        )
    if q:
        where.append(or_(_like_any(pattern, *CAMERA_TEXT), pp.c.named))
    cams: Any = Camera.__table__
    if lateral and (q or state):
        # a search compares every camera of the company's pods: one bitmap scan of the
        # ``pod_id`` index for all of them (the ids an InitPlan array), hash-joined to the
        # pods (a loop of 1,000 per-pod probes: 7-9 ms; this: 5-6 ms, EXPLAIN ANALYZE)
        ids = pods.with_only_columns(Pod.id).scalar_subquery()
        where.append(Camera.pod_id == any_(func.array(ids)))
        frm = pp.join(cams, Camera.pod_id == pp.c.pod_uuid)
    elif lateral:
        # ORDER BY (and LIMIT) keep PostgreSQL from flattening it into a plain join
        per_pod = select(*_PAGE_CAMERA_COLUMNS).where(Camera.pod_id == pp.c.pod_uuid, *where)
        if has_after:
            # the pods are the cursor's and those after it: the cursor's own pod continues
            # after its camera. Said per pod, the planner sees that the LIMIT stops the loop
            # early (the same row comparison on the join estimated 1 row: a full loop)
            onward = tuple_(pp.c.site_name, pp.c.pod_id) > tuple_(*key[:2])
            per_pod = per_pod.where(or_(onward, Camera.camera_id > key[2]))
        per_pod = per_pod.order_by(Camera.camera_id)
        if not unlimited and count != "window":  # (the window counts every match)
            per_pod = per_pod.limit(bindparam("b_want"))
        cams = per_pod.lateral("c")
        frm = pp.join(cams, true())
    else:
        frm = pp.join(cams, Camera.pod_id == pp.c.pod_uuid)
    cam = cams.c
    order = (pp.c.site_name, pp.c.pod_id, cam.camera_id)
    columns: list[Any] = [
        cam.camera_id,
        func.coalesce(cam.display_name, cam.name).label("name"),  # the admin's name first
        cam.stream_url,
        cam.status,
        cam.position,
        cam.error,
        pp.c.pod_id,
        pp.c.pod_name,
        pp.c.ip_address,
        pp.c.pod_reported_status,
        pp.c.last_heartbeat,
        pp.c.stream_mode,
        pp.c.site_uuid,
        pp.c.site_name,
        cam.media,
        cam.sub_media,
        cam.recording,
        pp.c.disk_total,
        pp.c.disk_free,
    ]
    if count == "window":
        columns.append(func.count().over())
    elif count == "pods":
        counted = Camera.__table__.alias("counted")
        of_pod = select(func.count()).select_from(counted).where(counted.c.pod_id == Pod.id)
        if status:
            of_pod = of_pod.where(counted.c.status == bindparam("b_status"))
        total = pods.with_only_columns(
            func.coalesce(func.sum(of_pod.correlate(Pod).scalar_subquery()), 0)
        )
        columns.append(total.correlate(None).scalar_subquery())
    stmt = select(*columns).select_from(frm)
    if not lateral or q or state:
        stmt = stmt.where(*where)
        if has_after:
            stmt = stmt.where(tuple_(*order) > tuple_(*key))
    stmt = stmt.order_by(*order)
    return stmt if unlimited else stmt.limit(bindparam("b_want"))


def after_key(stmt: Any, order: tuple[Any, ...], key: tuple[str, ...] | None) -> Any:
    """Rows strictly after ``key`` in ``order`` (a row-value comparison; both databases)."""
    if key is None:
        return stmt
    return stmt.where(tuple_(*order) > tuple_(*key))
