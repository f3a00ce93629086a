"""The package's layers (docs/architecture.md) and the homes of its concepts, enforced.

* every package imports only the packages its row of :data:`ALLOWED` names (any depth, lazy
  and type-checking imports included), and that table has no circle;
* no few-shot method is named in a branch: methods are the registry's business;
* result file names are written in one module, the ResNet-18 weights hash in one file;
* outside the command line, no function takes more than 10 parameters.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from test_structure import MODULES, TREES, circles, import_graph

from medimeta.train.fewshot.registry import method_names

SRC = Path(__file__).resolve().parents[2] / "src" / "medimeta"
#: Modules every package may import: errors, file safety, escaping, logging, paths, progress.
CORE = {"errors", "safeio", "escape", "logs", "paths", "progress", "_version", "_lazy"}
#: What each package may import besides the core (the drawing of docs/architecture.md).
ALLOWED: dict[str, set[str]] = {
    "catalog": set(),
    "format": {"catalog"},
    "preprocess": set(),
    "splitting": set(),
    "convert": {"catalog", "format", "preprocess", "splitting"},
    "fetch": {"catalog", "format", "convert"},
    "builders": {"catalog", "format", "preprocess", "splitting"},
    # data -> plots: MedIMeta.plot() / montage() draw with medimeta.plots (imported on call)
    "data": {"catalog", "format", "fetch", "plots"},
    "episodes": {"catalog", "format", "convert", "data"},
    "evaluate": {"catalog", "format"},
    "models": {"catalog", "data", "fetch"},
    "runs": {"evaluate"},
    "features": {"catalog", "format", "data", "episodes", "models", "runs"},
    "audit": {"catalog", "format", "features"},
    "train": {
        "catalog",
        "format",
        "data",
        "episodes",
        "evaluate",
        "models",
        "runs",
        "features",
        "audit",
    },
    "plots": {"catalog", "format", "evaluate", "runs"},
    "bench": {
        "catalog",
        "format",
        "data",
        "episodes",
        "evaluate",
        "models",
        "runs",
        "features",
        "train",
        "plots",
    },
    "synthetic": set(),
    "cli": {"*"},
    "demo": {"cli", "data", "synthetic"},
    "__main__": {"cli"},
    "(root)": {"catalog", "data"},
}


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "(root)"


def package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, targets in import_graph().items():
        here = _package(module)
        graph.setdefault(here, set()).update(
            t for t in map(_package, targets) if t != here and t not in CORE
        )
    return graph


def test_every_package_has_a_row_and_core_modules_import_only_core() -> None:
    packages = {_package(m) for m in MODULES} - CORE
    assert packages == set(ALLOWED), "add the new package to ALLOWED and docs/architecture.md"
    for module, targets in import_graph().items():
        if _package(module) in CORE:
            assert {_package(t) for t in targets} <= CORE, module


def test_packages_import_only_what_their_layer_allows() -> None:
    wrong = {
        package: sorted(targets - ALLOWED[package])
        for package, targets in package_graph().items()
        if "*" not in ALLOWED.get(package, set()) and targets - ALLOWED.get(package, set())
    }
    assert wrong == {}, f"imports across the layers (see docs/architecture.md): {wrong}"


def test_the_layer_table_has_no_circle() -> None:
    table = {p: {t for t in allowed if t != "*"} for p, allowed in ALLOWED.items()}
    assert circles(table) == []
    assert circles(package_graph()) == []


def test_the_architecture_page_lists_every_package() -> None:
    page = (SRC.parents[1] / "docs" / "architecture.md").read_text(encoding="utf-8")
    for package in ALLOWED:
        if package != "(root)":
            assert f"`{package}`" in page, package


def _is_method_name(node: ast.AST, names: set[str]) -> bool:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value in names
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return any(_is_method_name(e, names) for e in node.elts)
    return False


def test_no_branch_names_a_few_shot_method() -> None:
    names = set(method_names())
    found = []
    for module, tree in TREES.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare) and any(
                _is_method_name(n, names) for n in [node.left, *node.comparators]
            ):
                found.append(f"{module}:{node.lineno}")
            if isinstance(node, ast.match_case) and _is_method_name(
                getattr(node.pattern, "value", None) or ast.Constant(None), names
            ):
                found.append(f"{module}:{node.pattern.lineno}")
            if isinstance(node, ast.Dict) and sum(
                _is_method_name(k, names) for k in node.keys if k
            ):
                found.append(f"{module}:{node.lineno} (a table keyed by method names)")
    assert found == []


def test_result_file_names_live_in_one_module() -> None:
    names = re.compile(r"\b(run|results?|cell)\.json\b|\blog\.csv\b|predictions_(val|test|query)")
    found = []
    for path in SRC.rglob("*.py"):
        if path.relative_to(SRC).as_posix() == "runs/record.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docs = {
            id(n.body[0].value)
            for n in ast.walk(tree)
            if isinstance(n, ast.Module | ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef)
            and n.body
            and isinstance(n.body[0], ast.Expr)
            and isinstance(n.body[0].value, ast.Constant)
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in docs
                and names.search(node.value)
            ):
                found.append(f"{path.relative_to(SRC)}:{node.lineno}: {node.value[:60]!r}")
    assert found == [], "name result files through medimeta.runs.record"


def test_the_resnet18_weights_hash_is_written_once() -> None:
    files = [p for p in SRC.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    holders = [p for p in files if "f37072fd" in p.read_text("utf-8", "ignore")]
    assert [p.relative_to(SRC).as_posix() for p in holders] == ["models/weights_table.py"]


#: Public entry points whose keyword options are the documented API (each is validated where
#: it is called; none passes its arguments through to another wide function).
WIDE_BY_DESIGN = {
    "medimeta.data.dataset.__init__": "MedIMeta: the drop-in signature of medimeta 0.0.6",
    "medimeta.data.base.__init__": "the dataset base class MedIMeta's arguments go to",
    "medimeta.train.fewshot.config.__init__": "FewShotConfig: the settings object, one per field",
    "medimeta.episodes.sampler.__init__": "EpisodeSampler: an EpisodeSettings or its fields",
    "medimeta.episodes.batches.__init__": "CrossDomainBatches: batch, sampling and pixel options",
    "medimeta.format.writer.build.write_dataset": "the writer's documented options",
    "medimeta.convert.table.write_table": "the table converter's documented options",
    "medimeta.convert.medmnist.convert_medmnist": "the MedMNIST converter's documented options",
    "medimeta.evaluate.subgroups.subgroup_report": "the subgroup report's documented options",
}


def test_no_function_outside_the_cli_takes_more_than_ten_parameters() -> None:
    found = {}
    for module, tree in TREES.items():
        if module.startswith("medimeta.cli"):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                a = node.args
                params = [*a.posonlyargs, *a.args, *a.kwonlyargs]
                params = [p for p in params if p.arg not in ("self", "cls")]
                count = len(params) + (a.vararg is not None) + (a.kwarg is not None)
                if count > 10 and f"{module}.{node.name}" not in WIDE_BY_DESIGN:
                    found[f"{module}.{node.name}"] = count
    assert found == {}, "bundle them in a settings dataclass"
