"""Template rendering with the context every page needs (user, CSRF token, navigation)."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from importlib import resources
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from platebridge.portal.deps import csrf_token_for
from platebridge.portal.models import User, utcnow
from platebridge.portal.scoping import Capability, can


def ago(value: datetime | str | float | None, now: datetime | None = None) -> str:
    """``"2 min ago"``-style text (a datetime, ISO text or epoch seconds); ``"never"`` for None."""
    if value is None:
        return "never"
    if isinstance(value, int | float):
        value = datetime.fromtimestamp(value, UTC)
    elif isinstance(value, str):
        value = datetime.fromisoformat(value)
    seconds = int(((now or utcnow()) - value).total_seconds())
    if seconds < 10:
        return "just now"
    if seconds < 60:
        return f"{seconds} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86_400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86_400} d ago"


def filesize(value: int | None) -> str:
    """Bytes as ``"1.2 GB"`` (decimal units, as disks are sold)."""
    if value is None:
        return "unknown"
    size = float(value)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" or size >= 100 else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"  # unreachable


def _can(user: User | None, capability: Capability) -> bool:
    """``can(user, "footage")`` in templates (the role capability of ``scoping``)."""
    return user is not None and can(user, capability)


@lru_cache(maxsize=1)
def environment() -> Environment:
    folder = resources.files("platebridge.portal") / "templates"
    env = Environment(
        loader=FileSystemLoader(str(folder)),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["ago"] = ago
    env.filters["filesize"] = filesize
    env.globals["can"] = _can
    return env


def render(
    request: Request,
    template: str,
    status_code: int = 200,
    *,
    no_store: bool = False,
    **context: Any,
) -> HTMLResponse:
    """Render ``template``; ``no_store`` for pages showing a secret once."""
    user: User | None = getattr(request.state, "user", None)
    csrf = ""
    if user is not None:
        csrf = csrf_token_for(request)
    html = (
        environment()
        .get_template(template)
        .render(
            user=user,
            is_admin=user is not None and user.role == "admin",
            csrf_token=csrf,
            path=request.url.path,
            **context,
        )
    )
    headers = {"Cache-Control": "no-store"} if no_store else {"Cache-Control": "private, no-cache"}
    return HTMLResponse(html, status_code=status_code, headers=headers)
