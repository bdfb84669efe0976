"""hls.js served from the project's own ``node_modules`` (``npm ci`` of package-lock.json).

The file is never copied into the repository: ``PLATEBRIDGE_NODE_MODULES_DIR`` names the
directory; unset, ``./node_modules`` and then the source checkout's ``node_modules`` are tried.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from starlette.responses import FileResponse

from platebridge.portal.deps import Settings, public
from platebridge.portal.errors import ApiError
from platebridge.portal.settings import PortalSettings

router = APIRouter(include_in_schema=False)

HLS_RELATIVE = Path("hls.js") / "dist" / "hls.min.js"
# src/platebridge/portal/pages/assets.py → the checkout root is four levels up.
CHECKOUT_NODE_MODULES = Path(__file__).resolve().parents[4] / "node_modules"


def node_modules_candidates(settings: PortalSettings) -> list[Path]:
    if settings.node_modules_dir:
        return [Path(settings.node_modules_dir)]
    return [Path.cwd() / "node_modules", CHECKOUT_NODE_MODULES]


def find_hls_js(settings: PortalSettings) -> Path | None:
    for folder in node_modules_candidates(settings):
        candidate = folder / HLS_RELATIVE
        if candidate.is_file():
            return candidate
    return None


@router.get("/static/vendor/hls.min.js")
@public
async def hls_js(settings: Settings) -> FileResponse:
    path = find_hls_js(settings)
    if path is None:
        raise ApiError(
            404,
            "hls_js_missing",
            "hls.js is not installed: run scripts/setup.sh (npm ci) or set "
            "PLATEBRIDGE_NODE_MODULES_DIR",
        )
    return FileResponse(
        path, media_type="text/javascript", headers={"Cache-Control": "public, max-age=3600"}
    )
