"""``${VAR}`` / ``${VAR:-default}`` expansion in config values, so credentials stay out of files."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_REF = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")


class EnvExpansionError(ValueError):
    def __init__(self, key: str, variable: str) -> None:
        super().__init__(f"{key}: environment variable {variable} is not set")
        self.key = key
        self.variable = variable


def expand_string(value: str, env: Mapping[str, str], key: str) -> str:
    def sub(match: re.Match[str]) -> str:
        name = match.group("name")
        if name in env:
            return env[name]
        default = match.group("default")
        if default is None:
            raise EnvExpansionError(key, name)
        return default

    return _REF.sub(sub, value)


def expand_tree(node: Any, env: Mapping[str, str], key: str = "") -> Any:
    """Expand every string in a YAML tree; ``key`` is the dotted path used in error messages."""
    if isinstance(node, str):
        return expand_string(node, env, key or "<root>")
    if isinstance(node, list):
        return [expand_tree(item, env, f"{key}[{i}]") for i, item in enumerate(node)]
    if isinstance(node, dict):
        return {k: expand_tree(v, env, f"{key}.{k}" if key else str(k)) for k, v in node.items()}
    return node
