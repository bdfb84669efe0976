"""``POST /api/pod/enroll`` (public route: authenticated by the POD's ``pbk_`` key).

``platebridge-pod enroll`` fetches the pod's stream secret here after its heartbeat was
accepted, so an installer needs only the portal URL and the key. Authenticated exactly as the
heartbeat: the same key lookup (``pod_keys.active_key``, inside ``services.enroll``), the same
per-source throttle on refused keys, the same screen of the body (``json_body.check``); an
unknown key is told before any body error. Which pod a key may ask for: ``services.enroll``.

The answer carries a secret: ``Cache-Control: no-store``, and it is never logged. Each secret
handed out is one INFO line of the ``platebridge.portal.enroll`` logger (pod, key kind, source
address): not an ``audit_events`` row, whose rows are stream accesses (a camera and a stream
path each, both CHECK-constrained); recording enrolls there needs a migration of its own.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import Response

from platebridge.core.enroll import ENROLL_PATH, EnrollRequest, EnrollResponse
from platebridge.portal import json_body
from platebridge.portal.credentials import client_ip
from platebridge.portal.db import Database
from platebridge.portal.errors import ApiError
from platebridge.portal.markers import public
from platebridge.portal.pod_keys import key_throttled
from platebridge.portal.routes.heartbeat import PlainRoute, read_keyed_body
from platebridge.portal.services import enroll as service
from platebridge.portal.settings import PortalSettings
from platebridge.portal.throttle import get_throttle

log = logging.getLogger("platebridge.portal.enroll")
router = APIRouter(tags=["pod"], route_class=PlainRoute)

#: The body is ``{"pod_id": …}``; anything bigger than this is not an enroll request.
MAX_BODY_BYTES = 4096
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@router.post(ENROLL_PATH, response_model=EnrollResponse)
@public
async def enroll(request: Request) -> Response:
    # One budget with the heartbeat: same keys, same guess.
    state, source = request.app.state, client_ip(request)
    return await key_throttled(
        get_throttle(request),
        source,
        lambda: _enroll(request, state.db, state.settings, source),
    )


def _parse(body: bytes) -> EnrollRequest:
    json_body.check(body)  # deep nesting, huge numbers, not UTF-8: 422 before the parser
    try:
        return EnrollRequest.model_validate_json(body)
    except ValidationError as exc:
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            raise ApiError(422, "validation_error", "request body is not valid JSON") from None
        raise


async def _enroll(
    request: Request, db: Database, settings: PortalSettings, source: str | None
) -> Response:
    key_hash, req = await read_keyed_body(request, db, MAX_BODY_BYTES, _parse)
    async with db.read() as session:
        found = await service.pod_secret(session, key_hash, req.pod_id)
    log.info(
        "pod %s fetched its stream secret (%s key, from %s)", found.pod_id, found.key_kind, source
    )
    answer = EnrollResponse(
        pod_id=found.pod_id,
        stream_token_secret=found.stream_token_secret,
        heartbeat_interval=settings.heartbeat_interval,
    )
    return Response(
        answer.model_dump_json().encode(), media_type="application/json", headers=_NO_STORE
    )
