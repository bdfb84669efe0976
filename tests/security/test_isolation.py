"""Tenant isolation matrix, generated from the app's route table.

Two companies (admin + viewer each, pods, cameras, audit rows) on one real portal per backend.
For every route with an identifier (path, query or body) and every identifier of company B,
company A's admin and viewer get 404 — byte for byte the answer for an id that does not exist —
and nothing of B in the body or headers. A route added later enters the matrix by itself; one
with a parameter name the generators do not know fails here until it is classified.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect as ws_connect

from tests.security.conftest import World
from tests.security.routes_table import WEBSOCKET, RouteInfo, portal_routes
from tests.security.world import Company

pytestmark = pytest.mark.e2e  # a real portal process (tests/conftest.py guards it)

#: Identifier parameters → the value a company has for them.
IDENTIFIERS: dict[str, Callable[[Company], str]] = {
    "pod_id": lambda c: c.pod_id,
    "camera_id": lambda c: c.camera_id,
    "site": lambda c: c.site_name,
    "site_id": lambda c: c.site_id,
    "community_id": lambda c: c.community_id,  # the lifecycle routes (issue 15)
    "community": lambda c: c.community_id,  # the listings' filter (name or id)
    "user": lambda c: c.admin_email,
    "user_id": lambda c: c.admin_id,
    "email": lambda c: c.admin_email,
    "audit_id": lambda c: c.audit_ids[0] if c.audit_ids else "0",
    "event_id": lambda c: c.audit_ids[0] if c.audit_ids else "0",
    "share_id": lambda c: c.share_ids[0] if c.share_ids else "0",  # share links (issue 13)
    # Alerts (issue 14): a webhook endpoint of the company; the delivery log's filter.
    "endpoint_id": lambda c: c.endpoint_ids[0] if c.endpoint_ids else "0",
    "endpoint": lambda c: c.endpoint_ids[0] if c.endpoint_ids else "0",
}
#: Parameters that identify nothing of a tenant, with a harmless valid value (None: omitted).
OTHERS: dict[str, str | None] = {
    "name": "seg_1.ts",  # HLS segment file name
    "token": None,  # stream token: these requests authenticate with the session instead
    "status": None,
    "since": None,
    "until": None,
    "action": None,
    "limit": None,
    "cursor": None,  # listings: the first page (cursors are bound to the company: test_listing)
    "q": None,
    "state": None,
    "view": None,  # GET /cameras/more: cards or grid tiles
    "next": None,
    "password": "irrelevant-password",
    "stream_mode": "direct",
    "role": "admin",  # PATCH /api/users/{user_id}: own admin stays admin (a no-op)
    "current_password": None,  # POST /api/account/password: the caller's own, no identifier
    "new_password": None,
    # Object lifecycle (issue 15): the own-company call must change nothing that matters.
    "confirm": None,  # decommission without it: 422, the pod stays in service
    "new_pod_id": "matrix-api-pod",  # POST /api/pods: a new wire id, not a lookup
    "display_name": "Matrix camera",
    "body": None,  # POST /api/pods/{pod_id}/decommission: optional body (its confirm)
    "stream": None,  # main or sub of the same camera: the default (main)
    # Recorded footage (issue 13): a time range of the camera named by its identifiers.
    "from": "1764700000",
    "to": "1764700600",
    "start": "1764700000",
    "duration": None,
    "part": None,  # media: the init segment or the fragments only (the VOD playlist's)
    "expires_in_hours": "24",  # POST /api/shares: a new link of the caller's own camera
    "secret": "pbs_" + "x" * 43,  # /s/{secret}: public, identifies no tenant (a share's secret)
    # Alerts (issue 14): the rules (PUT: all omitted is 422, changes nothing) and endpoint
    # fields; PATCH /api/alerts/endpoints/{endpoint_id} renames the caller's own (``name``).
    "kind": None,
    "url": None,
    "recipients": None,
    "enabled": None,
    "pod_offline_after": None,
    "camera_error_after": None,
    "codec_unplayable_after": None,
    "recording_stopped_after": None,
    "disk_low_after": None,
    "tunnel_down_after": None,
    "disk_low_percent": None,
    "recover_after": None,
}
#: Routes whose identifier parameter is not a tenant lookup (the login form's e-mail).
#: Inviting: the e-mail is a new address (one answer, 409, whichever company holds it).
NOT_TENANT_LOOKUPS = {"POST /api/auth/login", "POST /api/users/invite"}

#: HTML form routes read their fields by hand (invisible to the route table): the lookup
#: fields they carry, and fixed values for the rest.
FORM_LOOKUPS: dict[str, tuple[str, ...]] = {
    "POST /pods/new": ("site_id",),
    "POST /pods/enrollment-key": ("site_id",),
    "POST /pods/{pod_id}/move": ("site_id",),
    "POST /sites/new": ("community_id",),
}
FORM_FIXED: dict[str, dict[str, str]] = {
    "POST /pods/new": {"pod_id": "matrix-new-pod", "name": "Matrix POD"},
    "POST /pods/{pod_id}/mode": {"stream_mode": "direct"},
    "POST /users/{user_id}/role": {"role": "admin"},
    "POST /pods/{pod_id}/rename": {"name": "Matrix POD"},
    "POST /sites/new": {"name": "Matrix site"},
    "POST /sites/{site_id}/rename": {"name": "Matrix site renamed"},
    "POST /sites/communities/{community_id}/rename": {"name": "Matrix community"},
    "POST /pods/{pod_id}/cameras/{camera_id}/rename": {"display_name": "Matrix camera"},
}

#: Process-to-process routes (HMAC-signed by the portal's secret key, not for users): outside
#: the tenant matrix, but nobody without the signature gets anything from them (tested below).
INTERNAL_PREFIX = "/internal/"

ALL_ROUTES = list(portal_routes())
ROUTES = [
    r
    for r in ALL_ROUTES
    if r.label not in NOT_TENANT_LOOKUPS and not r.path.startswith(INTERNAL_PREFIX)
]


def params_of(route: RouteInfo) -> tuple[str, ...]:
    return (
        route.path_params
        + route.query_params
        + route.body_fields
        + FORM_LOOKUPS.get(route.label, ())
    )


def test_every_parameter_has_a_generator() -> None:
    """A new route with a new parameter name fails loudly until it is added above."""
    unknown = {
        (route.label, name)
        for route in ROUTES
        for name in params_of(route)
        if name not in IDENTIFIERS and name not in OTHERS
    }
    assert not unknown, f"classify these parameters in tests/security/test_isolation.py: {unknown}"


def test_matrix_covers_the_known_tenant_routes() -> None:
    labels = {r.label for r in ROUTES if any(p in IDENTIFIERS for p in params_of(r))}
    assert "GET /api/pods/{pod_id}" in labels
    assert "GET /api/cameras" in labels
    assert f"{WEBSOCKET} /api/pod/live/{{pod_id}}" in labels  # WebSocket routes too
    assert len(labels) >= 3


@dataclass(frozen=True)
class Case:
    route: RouteInfo
    values: dict[str, str | None]  # parameter → value
    foreign: tuple[str, ...]  # parameters carrying company B's identifier

    @property
    def id(self) -> str:
        return f"{self.route.label} B:{','.join(self.foreign)}"


def _values(route: RouteInfo, own: Company, other: Company, foreign: set[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in params_of(route):
        if name in IDENTIFIERS:
            values[name] = IDENTIFIERS[name](other if name in foreign else own)
        else:
            values[name] = OTHERS.get(name)
    return values


def cases(route: RouteInfo, a: Company, b: Company) -> Iterator[Case]:
    idents = [p for p in params_of(route) if p in IDENTIFIERS]
    seen: set[tuple[str, ...]] = set()
    for n in range(1, len(idents) + 1):
        for combo in itertools.combinations(idents, n):
            if combo not in seen:
                seen.add(combo)
                yield Case(route, _values(route, a, b, set(combo)), combo)


def handshake(url: str, query: dict[str, Any], auth: dict[str, str]) -> httpx.Response:
    """A WebSocket route: a real upgrade. A refusal comes back as its HTTP answer; an accepted
    socket as 101 with its first message (the live view's error: no POD answers here)."""
    ws_url = str(httpx.URL(url.replace("http://", "ws://", 1), params=query))
    try:
        with ws_connect(ws_url, additional_headers=auth, open_timeout=15) as ws:
            try:
                first = ws.recv(timeout=15)
            except ConnectionClosed:
                first = ""
    except InvalidStatus as exc:
        r = exc.response
        status, headers, content = r.status_code, r.headers, bytes(r.body or b"")
    else:
        status, headers = 101, ws.response.headers
        content = first.encode() if isinstance(first, str) else first
    return httpx.Response(status, headers=list(headers.raw_items()), content=content)


def send(
    base: str, route: RouteInfo, values: dict[str, Any], auth: dict[str, str]
) -> httpx.Response:
    path = route.path
    for name in route.path_params:
        path = path.replace(
            "{" + name + "}", httpx.URL("/" + str(values[name])).raw_path[1:].decode()
        )
    query = {k: v for k in route.query_params if (v := values.get(k)) is not None}
    if route.method == WEBSOCKET:
        return handshake(base + path, query, auth)
    body = {k: v for k in route.body_fields if (v := values.get(k)) is not None} or None
    form: dict[str, str] | None = None
    if route.label in FORM_LOOKUPS or route.label in FORM_FIXED:
        form = dict(FORM_FIXED.get(route.label, {}))
        form.update({k: str(values[k]) for k in FORM_LOOKUPS.get(route.label, ())})
    return httpx.request(
        route.method,
        base + path,
        params=query,
        json=body if route.body_fields else None,
        data=form,
        headers=auth,
        timeout=15,
        follow_redirects=False,
    )


def leaks(response: httpx.Response, other: Company, requested: set[str]) -> list[str]:
    text = response.text + "\n" + "\n".join(f"{k}: {v}" for k, v in response.headers.items())
    return [f for f in other.fingerprints() if f and f not in requested and f in text]


def identifier_routes() -> list[RouteInfo]:
    return [r for r in ROUTES if any(p in IDENTIFIERS for p in params_of(r))]


def _lookup(route: RouteInfo) -> bool:
    """Path-, body- or form-addressed: a foreign id must be 404. Query-only filters list (200)."""
    addressed = route.path_params + route.body_fields + FORM_LOOKUPS.get(route.label, ())
    return any(p in IDENTIFIERS for p in addressed)


@pytest.mark.parametrize("route", identifier_routes(), ids=lambda r: r.label)
def test_foreign_identifiers_are_404_and_leak_nothing(world: World, route: RouteInfo) -> None:
    a, b = world.a, world.b
    for who, auth in (("admin", a.admin_auth), ("viewer", a.viewer_auth)):
        own = send(world.url, route, _values(route, a, b, set()), auth)
        assert own.status_code != 500, (who, route.label, own.text[:300])  # 502: no POD here
        assert not leaks(own, b, set()), (who, route.label, leaks(own, b, set()))
        for case in cases(route, a, b):
            r = send(world.url, route, case.values, auth)
            requested = {str(case.values[p]) for p in case.foreign}
            where = (who, case.id, r.status_code, r.text[:300])
            assert not leaks(r, b, requested), (*where, leaks(r, b, requested))
            if who == "viewer" and route.admin_only:
                assert r.status_code == 403, where
                continue
            if not _lookup(route):
                assert r.status_code == 200, where  # a filter: B's id matches nothing of A
                continue
            assert r.status_code == 404, where
            if route.api:
                assert r.headers["content-type"].startswith("application/json"), where
            # Indistinguishable from an id that exists nowhere.
            ghost = {k: (f"nx{v}" if k in case.foreign else v) for k, v in case.values.items()}
            g = send(world.url, route, ghost, auth)
            norm_r = r.text
            norm_g = g.text
            for p in case.foreign:
                norm_r = norm_r.replace(str(case.values[p]), "<ID>")
                norm_g = norm_g.replace(str(ghost[p]), "<ID>")
            assert (g.status_code, norm_g) == (r.status_code, norm_r), where


def test_own_rows_are_reachable(world: World) -> None:
    """Positive control: with A's own ids the lookups are not 404 (the matrix is not vacuous)."""
    a, b = world.a, world.b
    for route in identifier_routes():
        if route.admin_only or not _lookup(route):
            continue
        r = send(world.url, route, _values(route, a, b, set()), a.admin_auth)
        assert r.status_code != 404, (route.label, r.text[:300])


def test_shared_pod_id_resolves_inside_the_company(world: World) -> None:
    """Both companies own a ``main-gate-pod``: A always gets its own, never B's."""
    a, b = world.a, world.b
    r = httpx.get(f"{world.url}/api/pods/main-gate-pod", headers=a.admin_auth)
    assert r.status_code == 200 and r.json()["ip_address"] == a.ip
    assert not leaks(r, b, set())
    r = httpx.get(
        f"{world.url}/api/cameras", params={"pod_id": "main-gate-pod"}, headers=a.admin_auth
    )
    assert r.status_code == 200 and r.json()["cameras"]
    assert not leaks(r, b, set())


def test_listings_never_show_the_other_company(world: World) -> None:
    a, b = world.a, world.b
    for route in ROUTES:
        if route.method != "GET" or route.path_params or route.admin_only:
            continue
        if route.path.startswith("/static"):
            continue
        for auth in (a.admin_auth, a.viewer_auth):
            r = httpx.get(world.url + route.path, headers=auth, timeout=15)
            assert r.status_code < 500, (route.label, r.text[:300])
            assert not leaks(r, b, set()), (route.label, leaks(r, b, set()))


def test_company_b_untouched_by_the_matrix(world: World) -> None:
    """The matrix sent PATCH/POST with B's ids as A: B's pod and keys are as they were."""
    b = world.b
    r = httpx.get(f"{world.url}/api/pods/{b.pod_id}", headers=b.admin_auth)
    assert r.status_code == 200
    # B's pod was registered by heartbeat: the new-pod default, not the matrix's "direct".
    assert r.json()["stream_mode"] == "auto"
    from tests.security.world import heartbeat_body

    r = httpx.post(
        f"{world.url}/api/pod/heartbeat",
        headers={"Authorization": f"Bearer {b.api_key}"},
        json=heartbeat_body(b, b.pod_id, b.ip),
    )
    assert r.status_code == 200, "B's key was rotated by a request of company A"


def test_internal_routes_refuse_users_and_strangers(world: World) -> None:
    """The signed process-to-process routes give a signed-in user (or anyone) nothing."""
    internal = [r for r in ALL_ROUTES if r.path.startswith(INTERNAL_PREFIX)]
    for route in internal:
        path = route.path
        for name in route.path_params:
            value = "stream" if name == "path" else world.b.pod_id
            path = path.replace("{" + name + ":path}", value).replace("{" + name + "}", value)
        for auth in ({}, world.a.admin_auth, {"Authorization": f"Bearer {world.b.api_key}"}):
            r = httpx.request(route.method, world.url + path, headers=auth, timeout=10)
            assert r.status_code in (401, 403, 404), (route.label, r.status_code, r.text[:200])
            assert r.headers["content-type"].startswith("application/json")
            assert not leaks(r, world.b, set())
