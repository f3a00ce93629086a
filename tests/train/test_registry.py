"""The few-shot method registry: a method is one file. A toy method written into a temporary
module (and nowhere else) appears in ``fewshot --help``, in a ``benchmark --dry-run`` plan, in
the merged table and in the report; plugins load from ``$MEDIMETA_PLUGINS``; the registry's
rules (unique names, declared options, cost model) hold for every registered method."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medimeta.cli.app import app
from medimeta.errors import DuplicateRegistrationError, OptionError, UnknownNameError
from medimeta.evaluate.metrics import UndefinedMetricWarning
from medimeta.train.fewshot import FewShotConfig
from medimeta.train.fewshot.options import MethodOptions
from medimeta.train.fewshot.registry import (
    MethodKind,
    all_methods,
    get_method,
    load_plugins,
    method_names,
    register_method,
    unregister_method,
)

TOY = '''
"""A toy few-shot method: cosine similarity to the class centroids, on frozen features."""

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from medimeta.train.fewshot.options import MethodOptions
from medimeta.train.fewshot.registry import (
    FewShotMethod, MethodKind, frozen_features_cost, register_method,
)


@dataclass(frozen=True)
class ToyOptions(MethodOptions):
    toy_temperature: float = 0.1


@register_method
class ToyCentroids(FewShotMethod):
    name = "toy-centroids"
    paper_name = "Toy centroids"
    kind = MethodKind.FROZEN
    summary = "cosine to the class centroids (a test's toy)"
    options = ToyOptions
    reads_features = True
    order = 35

    def score_features(self, support, support_y, query, target, n_way, cfg, seed, stage):
        y = support_y.reshape(-1).long()
        ways = 2 if target == "BINARY_CLASSIFICATION" else n_way
        centroids = torch.stack([support[y == c].mean(0) for c in range(ways)])
        sims = F.normalize(query, dim=1) @ F.normalize(centroids, dim=1).T
        probs = torch.softmax(sims / cfg.options.toy_temperature, dim=1).double()
        probs = probs[:, 1:] if target == "BINARY_CLASSIFICATION" else probs
        return probs.numpy(), {}

    def estimate(self, ctx):
        return frozen_features_cost(ctx, 0.0)
'''


@pytest.fixture
def toy(tmp_path: Path) -> Iterator[Path]:
    """The toy method's module, written to a temporary folder and loaded as a plugin."""
    path = tmp_path / "plugin" / "toy_method.py"
    path.parent.mkdir()
    path.write_text(textwrap.dedent(TOY), encoding="utf-8")
    load_plugins(str(path))
    yield path
    unregister_method("toy-centroids")
    sys.modules.pop("medimeta_plugin_toy_method", None)


def _cli(args: list[str]) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_a_toy_method_in_one_file_reaches_help_plan_table_and_report(
    toy: Path, fewshot_root: Path, tmp_path: Path
) -> None:
    assert "toy-centroids" in method_names() and get_method("toy-centroids").order == 35
    helped = " ".join(_cli(["fewshot", "--help"]).split())
    assert "toy-centroids (cosine to the class centroids (a test's toy))" in helped
    assert "toy-centroids" in _cli(["benchmark", "--help"])
    bench = tmp_path / "bench"
    common = ["--root", str(fewshot_root), "--targets", "target", "--backbones", "tiny_cnn"]
    common += ["--pretrained", "none", "--image-size", "16", "--shots", "2", "--query", "2"]
    common += ["--episodes", "3", "--out", str(bench), "--cache", str(tmp_path / "cache")]
    plan = _cli(["benchmark", *common, "--methods", "protonet,toy-centroids", "--dry-run"])
    assert "toy-centroids target:case category tiny_cnn 2-shot seed 0" in plan
    _cli(["benchmark", *common, "--methods", "protonet,toy-centroids", "-q"])
    table = (bench / "results.md").read_text(encoding="utf-8")
    rows = [line.split(" | ")[0] for line in table.splitlines() if line.startswith("| ")]
    assert rows[1:] == ["| ProtoNet", "| Toy centroids"]  # the order the method declares
    site = tmp_path / "site"
    _cli(["report", "--root", str(fewshot_root), "--runs", str(bench), "--out", str(site)])
    index = (site / "index.html").read_text(encoding="utf-8")
    assert "Toy centroids" in index and "toy-centroids" in index
    assert "?" not in index.split("<h2>Runs</h2>")[1].split("</table>")[0]


def test_a_plugin_named_in_the_environment_loads_in_a_fresh_process(toy: Path) -> None:
    env = {**os.environ, "MEDIMETA_PLUGINS": str(toy)}
    code = "from medimeta.train.fewshot import method_names; print(method_names())"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "toy-centroids" in out.stdout
    env["MEDIMETA_PLUGINS"] = "no_such_module_xyz"
    bad = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert bad.returncode != 0 and "MEDIMETA_PLUGINS names 'no_such_module_xyz'" in bad.stderr


def test_registry_rules() -> None:
    with pytest.raises(UnknownNameError, match="did you mean"):
        get_method("protonett")

    class Twice(get_method("knn").__class__):  # type: ignore[misc]
        pass

    with pytest.raises(DuplicateRegistrationError, match="already registered"):
        register_method(Twice)
    with pytest.raises(OptionError, match="has no option"):
        FewShotConfig(method="knn", probe_steps=3)
    with pytest.raises(OptionError, match="unknown few-shot setting"):
        FewShotConfig(method="knn").with_overrides(no_such_setting=1)
    # options of other methods are ignored: one set of command-line options serves all
    assert FewShotConfig(method="knn").with_overrides(probe_steps=3).relevant()["knn_k"] == 10


@pytest.mark.parametrize("name", [m.name for m in all_methods()])
def test_every_method_declares_what_the_toolkit_reads(name: str) -> None:
    method = get_method(name)
    assert method.paper_name and method.summary and isinstance(method.kind, MethodKind)
    assert issubclass(method.options, MethodOptions)
    assert method.has_stage == (method.kind is MethodKind.META_TRAINED)
    assert method.calibration[0] == "forward"
    described = method.describe()
    assert described["options"] == method.options().recorded()
    cfg = FewShotConfig(method=name)
    assert set(cfg.relevant()) >= set(method.options().recorded())


def test_the_methods_page_holds_the_registrys_table() -> None:
    from medimeta.train.fewshot.report import methods_markdown

    page = (Path(__file__).resolve().parents[2] / "docs" / "methods.md").read_text("utf-8")
    generated = page.split("<!-- methods table: generated -->\n")[1].split("<!-- end")[0]
    assert generated == methods_markdown(), "regenerate docs/methods.md from the registry"
