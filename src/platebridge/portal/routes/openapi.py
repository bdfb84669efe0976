"""``GET /api/openapi.json``: the portal's OpenAPI document, for signed-in users only.

Decision (docs/security.md): the document describes routes, not data, but anonymous scanners
need not get a map of the API, so it sits behind the same secure-by-default guard as every
other route (any role). No Swagger/ReDoc UI: they would load scripts from a CDN.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

router = APIRouter(tags=["meta"])

OPENAPI_PATH = "/api/openapi.json"


@router.get(OPENAPI_PATH, include_in_schema=False)
async def openapi_document(request: Request) -> dict[str, Any]:
    document: dict[str, Any] = request.app.openapi()
    return document
