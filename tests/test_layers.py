"""Package layering, checked by parsing the source with ``ast`` (nothing is imported).

Imports inside functions and ``TYPE_CHECKING`` blocks count too: ``ast.walk`` sees them all.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "platebridge"


def _imports(package: str) -> list[tuple[str, str]]:
    """(module file, imported module) for every absolute import in a package."""
    found = []
    for path in (SRC / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.append((str(path.relative_to(SRC)), node.module))
            elif isinstance(node, ast.Import):
                found.extend((str(path.relative_to(SRC)), a.name) for a in node.names)
    return found


def test_tunnel_never_imports_streaming() -> None:
    bad = [i for i in _imports("portal/tunnel") if i[1].startswith("platebridge.portal.streaming")]
    assert not bad, f"tunnel -> streaming would close the streaming <-> tunnel cycle: {bad}"


def test_core_imports_no_portal_pod_demo() -> None:
    bad = [
        i
        for i in _imports("core")
        if i[1].split(".")[:2]
        in (["platebridge", "portal"], ["platebridge", "pod"], ["platebridge", "demo"])
    ]
    assert not bad, f"core must stay at the bottom: {bad}"


def test_one_default_pod_networks() -> None:
    from platebridge.portal import settings
    from platebridge.portal.streaming import ssrf

    assert ssrf.DEFAULT_POD_NETWORKS is settings.DEFAULT_POD_NETWORKS
