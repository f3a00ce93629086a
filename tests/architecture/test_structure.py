"""The shape of the package: no import circles, small modules and functions, one home each for
atomic writes and normalisation presets."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "medimeta"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
TREES = {name: ast.parse(path.read_text(encoding="utf-8")) for name, path in MODULES.items()}


def _imported(module: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    """Modules of the package that ``node`` (in ``module``) imports.

    ``from pkg import name`` imports ``pkg.name`` when that is a module, else ``pkg`` itself.
    The parent packages Python imports on the way are not counted: every submodule would
    otherwise be in a circle with its package's ``__init__``.
    """
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name in MODULES]
    base = node.module or ""
    if node.level:
        here = module.split(".")
        if not str(MODULES[module]).endswith("__init__.py"):
            here = here[:-1]
        here = here[: len(here) - (node.level - 1)]
        base = ".".join(here + ([node.module] if node.module else []))
    out = []
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        out.append(sub if sub in MODULES else base)
    return [m for m in out if m in MODULES]


def import_graph() -> dict[str, set[str]]:
    """Every import of every module, at any depth (functions, TYPE_CHECKING blocks too)."""
    graph: dict[str, set[str]] = {}
    for name, tree in TREES.items():
        edges: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                edges.update(_imported(name, node))
        edges.discard(name)
        graph[name] = edges
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        found.append(sorted(comp))
    return found


def test_the_cycle_finder_finds_a_circle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert circles(graph) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_no_import_circle_anywhere() -> None:
    found = circles(import_graph())
    assert found == [], "import circles (lazy imports included):\n" + "\n".join(
        " <-> ".join(c) for c in found
    )


def test_no_module_imports_the_package_root() -> None:
    offenders = [
        name
        for name, tree in TREES.items()
        for node in ast.walk(tree)
        if name != "medimeta"
        and (
            (
                isinstance(node, ast.ImportFrom)
                and node.module == "medimeta"
                and not node.level
                and any(f"medimeta.{a.name}" not in MODULES for a in node.names)
            )
            or (isinstance(node, ast.Import) and any(a.name == "medimeta" for a in node.names))
        )
    ]
    assert offenders == []


def test_modules_and_functions_are_small() -> None:
    long_modules = {
        name: n
        for name, path in MODULES.items()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    long_functions = {
        f"{name}.{node.name}": node.end_lineno - node.lineno + 1
        for name, tree in TREES.items()
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    }
    assert long_modules == {}, f"modules over {MAX_MODULE_LINES} lines"
    assert long_functions == {}, f"functions over {MAX_FUNCTION_LINES} lines"


def _calls(tree: ast.AST, owner: str, attr: str) -> int:
    return sum(
        1
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == attr
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == owner
    )


def test_renames_happen_only_in_safeio() -> None:
    users = {
        name
        for name, tree in TREES.items()
        if _calls(tree, "os", "replace") or _calls(tree, "os", "rename")
    }
    assert users == {"medimeta.safeio"}


@pytest.mark.parametrize(
    "numbers",
    [
        ("0.485", "0.456", "0.406"),  # ImageNet mean
        ("0.229", "0.224", "0.225"),  # ImageNet std
    ],
)
def test_preset_numbers_are_written_in_one_file(numbers: tuple[str, ...]) -> None:
    pattern = re.compile(r"\(\s*" + r"\s*,\s*".join(map(re.escape, numbers)) + r"\s*\)")
    homes = [
        str(path.relative_to(PACKAGE))
        for path in MODULES.values()
        if pattern.search(path.read_text(encoding="utf-8"))
    ]
    assert len(homes) == 1, homes


def test_half_preset_written_once() -> None:
    pattern = re.compile(r"\(0\.5,\)|\(0\.5, 0\.5, 0\.5\)")
    homes = [
        str(path.relative_to(PACKAGE))
        for path in MODULES.values()
        if pattern.search(path.read_text(encoding="utf-8"))
    ]
    assert len(homes) == 1, homes
