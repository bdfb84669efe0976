"""One error body: no module but ``core/errors.py`` builds ``{"error": …, "detail": …}`` itself.

A dict display whose keys are exactly ``error`` and ``detail`` anywhere else in ``src/`` is a
second place that builds the error body; it must call ``platebridge.core.errors.error_body``.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "platebridge"
HOME = SRC / "core" / "errors.py"


def _error_body_literals(path: Path) -> list[int]:
    tree = ast.parse(path.read_text("utf-8"), str(path))
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            keys = {k.value for k in node.keys if isinstance(k, ast.Constant)}
            if keys == {"error", "detail"} and len(node.keys) == 2:
                lines.append(node.lineno)
    return lines


def test_error_body_is_built_in_one_place() -> None:
    offenders = {
        str(path.relative_to(SRC)): lines
        for path in sorted(SRC.rglob("*.py"))
        if path != HOME and (lines := _error_body_literals(path))
    }
    assert offenders == {}, f"build error bodies with core.errors.error_body: {offenders}"


def test_the_home_is_found() -> None:
    assert _error_body_literals(HOME), "core/errors.py no longer builds the body: update this test"
