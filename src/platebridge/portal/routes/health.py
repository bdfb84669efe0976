"""``GET /health`` for load balancers: the process answers and the database responds."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from platebridge.portal.deps import Db, public
from platebridge.portal.schemas import Health

router = APIRouter()


@router.get("/health", response_model=Health, responses={503: {"model": Health}})
@public
async def health(db: Db) -> JSONResponse:
    try:
        async with db.read() as session:
            await session.execute(text("SELECT 1"))
    except Exception:  # any driver error means "not ready"
        return JSONResponse({"status": "error", "database": "unreachable"}, status_code=503)
    return JSONResponse({"status": "ok", "database": "ok"})
