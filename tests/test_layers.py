"""The package's layers, read from the source: every import (made at load time, inside a function, or
only for the type checker) goes down a floor, never up or sideways, so no two rooms import each
other round a loop and each phase can be read and tested apart from the ones above it.

A room is a top-level module of `autoevol/` or one of its subpackages. A new room must be given a
floor here: placing it is the moment to decide what it may import.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "autoevol"

FLOORS: dict[str, int] = {
    # the ground: stdlib only
    "_version": 0, "types": 0, "errors": 0, "executor": 0, "redact": 0, "sqlite_util": 0,
    "files": 1, "home": 1,
    # foundations
    "llm": 2, "config": 2, "methods": 2,
    # services
    "prompts": 3, "data": 3, "engines": 3, "probe": 3,
    "detect": 4, "quality": 4, "store": 4,  # store: the manifest records a DataSource
    # the paper's two phases, optimisation standing on evolution
    "evolution": 5,
    "optimization": 6,
    # readers and views of a run
    "report": 7, "progress": 7, "plan": 7,
    # the option models made live (a DataSource, the Roles, the settings) for every entry
    "entry": 7,
    # a run's lifetime, then the commands
    "session": 8,
    "api": 9,
    # entries
    "notebook": 10, "cli": 10,
    "demo": 11, "": 11,  # "" is the package face, autoevol/__init__.py
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        out[".".join(parts[:-1] if path.name == "__init__.py" else parts)] = path
    return out


def _room(module: str) -> str:
    return module.split(".")[1] if "." in module else ""


def _kind(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> str:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return "type-only"
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            return "lazy"
    return "load-time"


def import_arrows() -> list[tuple[str, str, str, str]]:
    """(from room, to room, file:line, kind) for every import of another room of the package."""
    modules = _modules()
    arrows = []
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and _room(target) != _room(module):
                    where = f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"
                    arrows.append((_room(module), _room(target), where, _kind(node, parents)))
    return arrows


def test_every_room_has_a_floor() -> None:
    rooms = {_room(module) for module in _modules()}
    assert sorted(rooms - FLOORS.keys()) == [], "give each new room a floor in tests/test_layers.py"


def test_no_import_runs_up_or_sideways_counting_lazy_and_type_only_imports() -> None:
    wrong = [f"{where} ({kind}): {a or 'autoevol'} (floor {FLOORS[a]}) -> {b or 'autoevol'} (floor {FLOORS[b]})"
             for a, b, where, kind in import_arrows() if a in FLOORS and b in FLOORS and FLOORS[b] >= FLOORS[a]]
    assert wrong == []


def test_no_loop_between_rooms() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for a, b, _, _ in import_arrows():
        graph[a].add(b)
    state: dict[str, int] = {}

    def visit(room: str, path: list[str]) -> None:
        state[room] = 1
        for nxt in sorted(graph[room]):
            if state.get(nxt) == 1:
                pytest.fail("rooms import each other round a loop: " + " -> ".join([*path, room, nxt]))
            if nxt not in state:
                visit(nxt, [*path, room])
        state[room] = 2

    for room in sorted(graph):
        if room not in state:
            visit(room, [])


@pytest.mark.parametrize("kind", ["load-time", "lazy", "type-only"])
def test_the_scan_sees_each_kind_of_import(kind: str) -> None:
    # The rules above would pass vacuously if the scan missed a kind of import.
    assert any(k == kind for _, _, _, k in import_arrows())


def test_a_planted_upward_import_is_caught(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "autoevol"
    (fake / "llm").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "api.py").write_text("")
    (fake / "llm" / "__init__.py").write_text("")
    (fake / "llm" / "client.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from autoevol.api import Thing\n")
    monkeypatch.setattr(__import__(__name__, fromlist=["PACKAGE"]), "PACKAGE", fake)
    assert ("llm", "api", "autoevol/llm/client.py:3", "type-only") in import_arrows()
    with pytest.raises(AssertionError):
        test_no_import_runs_up_or_sideways_counting_lazy_and_type_only_imports()
