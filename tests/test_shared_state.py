"""Shared state reaches routes and pages through the typed aliases of ``portal/deps.py``, and
the streaming package takes plain values (checked in the source; nothing is imported)."""

from __future__ import annotations

import ast
from pathlib import Path

PORTAL = Path(__file__).resolve().parents[1] / "src" / "platebridge" / "portal"


def _imported(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def test_streaming_never_reads_the_request_or_app_state() -> None:
    """Stream authorisation gets the login token and the StreamingState from its caller."""
    bad = []
    for path in sorted((PORTAL / "streaming").glob("*.py")):
        if "app.state" in path.read_text():
            bad.append((path.name, "app.state"))
        bad += [(path.name, m) for m in _imported(path) if m.startswith("platebridge.portal.cred")]
    assert not bad, bad


def test_routes_and_pages_use_the_deps_aliases_for_streaming_and_the_hub() -> None:
    bad = []
    for package in ("routes", "pages"):
        for path in sorted((PORTAL / package).glob("*.py")):
            text = path.read_text()
            for needle in ("app.state.streaming", "app.state.tunnel_hub", "streaming_state("):
                if needle in text:
                    bad.append((f"{package}/{path.name}", needle))
            if "platebridge.portal.tunnel.routes.get_hub" in _imported(path):
                bad.append((f"{package}/{path.name}", "get_hub"))
    assert not bad, bad


def test_the_checks_see_what_they_look_for(tmp_path: Path) -> None:
    """The import walk finds a ``from … import name`` (else the tests above are void)."""
    sample = tmp_path / "sample.py"
    sample.write_text("from platebridge.portal.tunnel.routes import get_hub\n")
    assert "platebridge.portal.tunnel.routes.get_hub" in _imported(sample)
