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


# --- the whole import graph --------------------------------------------------------------------


def _node(module: str) -> str | None:
    """The graph node of a ``platebridge`` module: a subpackage of a program
    (``portal.streaming``) or a top-level module of it (``portal.deps``, ``portal.app``)."""
    parts = module.split(".")
    if parts[0] != "platebridge" or len(parts) < 2:
        return None
    if len(parts) == 2:
        return parts[1]
    return f"{parts[1]}.{parts[2]}"


def _module_of(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(path: Path, node: ast.ImportFrom) -> list[str]:
    """Absolute module names an ``ImportFrom`` reaches (relative imports resolved too, and
    ``from pkg import sub`` counted as importing ``pkg.sub``)."""
    if node.level:
        base = _module_of(path).split(".")
        if path.name != "__init__.py":
            base = base[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    return [target] + [f"{target}.{a.name}" for a in node.names]


def _graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        src_node = _node(_module_of(path))
        if src_node is None:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom):
                targets = _resolve(path, node)
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            for target in targets:
                dst = _node(target)
                if dst is None or dst == src_node:
                    continue
                if (
                    not (SRC.parent / Path(*target.split("."))).exists()
                    and not (SRC.parent / (str(Path(*target.split("."))) + ".py")).exists()
                ):
                    dst = _node(target.rsplit(".", 1)[0])  # a name, not a module
                    if dst is None or dst == src_node:
                        continue
                edges.setdefault(src_node, set()).add(dst)
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(set(edges) | {w for ws in edges.values() for w in ws}):
        if v not in index:
            visit(v)
    return found


def test_graph_sees_known_edges() -> None:
    """The graph is built right: edges we know exist are in it (else the cycle test is void)."""
    edges = _graph()
    assert "portal.streaming" in edges["portal.deps"]
    assert "portal.tunnel" in edges["portal.streaming"]
    assert "core.tokens" in edges["portal.streaming"]


def test_no_import_cycle_between_packages() -> None:
    assert _cycles(_graph()) == []


def test_cycle_search_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_programs_meet_only_in_core() -> None:
    edges = _graph()
    bad = [
        (a, b)
        for a, bs in edges.items()
        for b in bs
        if {a.split(".")[0], b.split(".")[0]} == {"portal", "pod"}
    ]
    assert not bad, f"portal and pod may share only core: {bad}"


def test_deps_does_not_import_pages() -> None:
    assert "portal.pages" not in _graph().get("portal.deps", set())


def test_tunnel_does_not_import_services() -> None:
    assert "portal.services" not in _graph().get("portal.tunnel", set())


def test_services_take_plain_values() -> None:
    """No service sees the HTTP request or the app: they take sessions, settings and ids."""
    bad = []
    for path in (SRC / "portal" / "services").rglob("*.py"):
        text = path.read_text()
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and (node.module.startswith(("fastapi", "starlette")))
            ):
                bad.append((path.name, node.module))
        if "app.state" in text:
            bad.append((path.name, "app.state"))
    assert not bad, bad
