"""One launcher: only ``tests/support`` starts portal and POD agent processes.

``tests/support/portal.py`` starts ``platebridge-portal`` (serve and the CLI),
``tests/support/agent.py`` starts ``platebridge-pod``; every test and benchmark goes through
them. This test parses each module of ``tests/`` and ``bench/`` outside ``tests/support``
(no imports, no processes) and fails on a call that starts a process (``subprocess.*``,
``asyncio.create_subprocess_*``, ``os.exec*``/``spawn*``/``system``, ``Proc(...)``) whose
arguments name a PlateBridge program (``platebridge-portal``, ``platebridge.pod``,
``-m platebridge.demo``, …) or the support modules' program paths (``PORTAL``, ``POD``),
directly or through a name assigned in its function or module.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SUPPORT = REPO / "tests" / "support"
SEARCHED = (REPO / "tests", REPO / "bench")

#: A program or ``-m`` module of ours: platebridge-portal, platebridge.pod, platebridge.demo …
PROGRAM = re.compile(r"(?:^|/)platebridge(?:-(?:portal|pod)|\.(?:portal|pod|demo)(?:\.[a-z_]+)*)$")
#: The support modules' program paths: importing one is the way to build your own argv.
PROGRAM_CONSTANTS = {"PORTAL", "POD"}
#: What starts a process, per module (``asyncio.run`` does not).
SPAWNERS = {
    "subprocess": re.compile(r"^(?:Popen|run|call|check_call|check_output|getstatusoutput)$"),
    "asyncio": re.compile(r"^create_subprocess_(?:exec|shell)$"),
    "os": re.compile(r"^(?:system|popen|exec[lv]p?e?|spawn[lv]p?e?|posix_spawnp?)$"),
}

#: Modules allowed to start one of our programs themselves, and why. Keep it short.
EXCEPTIONS = {
    "tests/demo/test_demo.py": (
        "runs the demo launcher itself (`python -m platebridge.demo`, which starts its own "
        "portal and POD): what is under test is the launcher"
    ),
    "tests/pod/test_enroll.py": (
        "the agent's CLI under test (`platebridge-pod enroll`; could use "
        "tests.support.agent.pod_cli), and the agent started with the systemd unit's own "
        "ExecStart argv"
    ),
}


def _docstrings(tree: ast.Module) -> set[int]:
    """ids of the docstring constants (they may name the programs freely)."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def _spawn_names(tree: ast.Module) -> set[str]:
    """Bare names bound to a spawning function (``from subprocess import run``) or ``Proc``."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                spawner = SPAWNERS.get(node.module)
                spawning = spawner is not None and spawner.match(alias.name)
                if spawning or (node.module == "tests.support.procs" and alias.name == "Proc"):
                    names.add(alias.asname or alias.name)
    return names


def _spawn_calls(tree: ast.Module) -> list[ast.Call]:
    """The calls that start a process."""
    bare = _spawn_names(tree)
    calls = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute):
            owner = func.value
            spawner = SPAWNERS.get(owner.id) if isinstance(owner, ast.Name) else None
            if (spawner is not None and spawner.match(func.attr)) or func.attr == "Proc":
                calls.append(node)
        elif isinstance(func, ast.Name) and func.id in bare:
            calls.append(node)
    return calls


def _named(node: ast.AST, tainted: set[str], skip: set[int]) -> list[str]:
    """Our programs named inside ``node``: string constants and names holding one."""
    out = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str) and id(sub) not in skip:
            if PROGRAM.search(sub.value.strip()):
                out.append(sub.value)
        elif isinstance(sub, ast.Name) and sub.id in tainted:
            out.append(sub.id)
    return out


def _assigns(nodes: list[ast.AST]) -> list[tuple[str, ast.AST]]:
    """(name, value) for ``name = …``, ``name += …``, ``name[i] = …`` and
    ``name.append/extend/insert(…)`` among ``nodes``."""
    out: list[tuple[str, ast.AST]] = []
    for node in nodes:
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Subscript):
                    target = target.value
                if isinstance(target, ast.Name):
                    out.append((target.id, node.value))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in {"append", "extend", "insert"}
            and isinstance(node.func.value, ast.Name)
        ):
            out.append((node.func.value.id, node))
    return out


def _grow(tainted: set[str], assigns: list[tuple[str, ast.AST]], skip: set[int]) -> set[str]:
    """Names that (transitively, by assignment) hold one of our programs."""
    tainted = set(tainted)
    while True:
        grown = {name for name, value in assigns if _named(value, tainted, skip)} - tainted
        if not grown:
            return tainted
        tainted |= grown


def _module_tainted(tree: ast.Module, skip: set[int]) -> set[str]:
    """Module-level names holding a program (``PORTAL = str(VENV_BIN / "platebridge-portal")``)
    and the support modules' program paths imported."""
    imported = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tests.support")
        for alias in node.names
        if alias.name in PROGRAM_CONSTANTS
    }
    return _grow(imported, _assigns(list(tree.body)), skip)


def launches(source: str, filename: str = "<test>") -> list[str]:
    """``line N: [programs]`` for each call in ``source`` that starts one of our programs,
    named in its arguments directly or through a name assigned in its function or module
    (``argv = [PORTAL, "serve"]; Proc(argv, ...)``)."""
    tree = ast.parse(source, filename=filename)
    skip = _docstrings(tree)
    module = _module_tainted(tree, skip)
    scopes: dict[int, set[str]] = {}
    for func in ast.walk(tree):
        if isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
            tainted = _grow(module, _assigns(list(ast.walk(func))), skip)
            for node in ast.walk(func):
                scopes[id(node)] = tainted  # the innermost function wins (walked last)
    found = []
    for call in _spawn_calls(tree):
        tainted = scopes.get(id(call), module)
        named = [n for arg in (*call.args, *call.keywords) for n in _named(arg, tainted, skip)]
        if named:
            found.append(f"line {call.lineno}: {sorted(set(named))}")
    return found


def _modules() -> list[Path]:
    return sorted(
        path
        for root in SEARCHED
        for path in root.rglob("*.py")
        if not path.is_relative_to(SUPPORT) and ".venv" not in path.parts
    )


def test_only_tests_support_starts_portal_or_agent_processes() -> None:
    offenders = {}
    for path in _modules():
        rel = path.relative_to(REPO).as_posix()
        found = launches(path.read_text(), str(path))
        if found and rel not in EXCEPTIONS:
            offenders[rel] = found
    assert offenders == {}, (
        "start portal / POD agent processes through tests/support (portal.start_portal, "
        "portal.portal_process, portal.cli, agent.Agent, agent.pod_cli), not by hand: "
        f"{offenders}"
    )


def test_every_exception_still_needs_its_place() -> None:
    for rel in EXCEPTIONS:
        path = REPO / rel
        assert path.exists(), f"{rel} is listed in EXCEPTIONS but does not exist"
        assert launches(path.read_text()), (
            f"{rel} no longer starts our programs: drop its exception"
        )


def test_the_guard_sees_a_hand_made_launcher() -> None:
    """The detector itself: portals and agents started by hand are found (directly, through a
    support program path, through names); a docstring, a logger name, ``asyncio.run`` and a
    process that is not ours are not."""
    assert launches(
        "import subprocess, sys\n"
        "subprocess.Popen([sys.executable, '-m', 'platebridge.portal', 'serve'])\n"
    ) == ["line 2: ['platebridge.portal']"]
    assert launches(
        "from tests.support.portal import PORTAL\n"
        "from tests.support.procs import Proc\n"
        "argv = [PORTAL, 'serve']\n"
        "p = Proc(argv, log_path=None)\n"
    ) == ["line 4: ['argv']"]
    assert launches(
        "import asyncio\n"
        "POD = str(VENV_BIN / 'platebridge-pod')\n"
        "argv = [POD, 'run']\n"
        "argv += ['--config', 'x']\n"
        "asyncio.create_subprocess_exec(*argv)\n"
    ) == ["line 5: ['argv']"]
    assert launches(
        "import os, subprocess\n"
        "def start(unit):\n"
        "    argv = unit.split()\n"
        "    argv[0] = os.path.join(BIN, 'platebridge-pod')\n"
        "    return subprocess.run(argv)\n"
    ) == ["line 5: ['argv']"]
    assert (
        launches(
            '"""Runs ``platebridge-portal serve`` through tests/support."""\n'
            "import asyncio, logging, subprocess\n"
            "EXE = '/opt/platebridge/venv/bin/platebridge-pod'\n"
            "logging.getLogger('platebridge.pod')\n"
            "asyncio.run(main('platebridge.portal'))\n"
            "subprocess.run(['systemd-analyze', 'verify', unit])\n"
        )
        == []
    )
