"""zero-shot: prompts, scores and parity with transformers, on tiny random CLIP and SigLIP models
(image and text towers, with a real CLIP tokenizer) made in the test.

Parity: our image-text logits (the backbone's projected features of our pixels, the text
tower's embeddings of the tokenised prompts, the model's scale and bias) equal the model's own
``logits_per_image`` on transformers' slow processor pixels of the same real BUSI images
(relative error <= 1e-4)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from medimeta.cli.app import app, main
from medimeta.episodes import EpisodeLoader
from medimeta.errors import FormatError, OptionError, UnknownNameError
from medimeta.evaluate.metrics import UndefinedMetricWarning
from medimeta.features.reader import reader_for
from medimeta.models import create_backbone
from medimeta.models.hf.text import load_text_tower, text_problem
from medimeta.runs.record import read_run
from medimeta.train.fewshot import FewShotConfig, run_fewshot
from medimeta.train.fewshot.methods.zero_shot import zero_shot_scores
from medimeta.train.fewshot.prompts import TaskText, prompt_set
from medimeta.train.settings import EpisodePlan, RunSettings
from models.hf_helpers import relative_error, save_tiny, save_tiny_contrastive

TASK = TaskText("Breast Ultrasound", "case category", "Breast ultrasound")
TEXTS = ["benign", "a breast ultrasound image showing malignant", "nothing at all"]


@pytest.fixture(scope="module")
def contrastive(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, object]]:
    root = tmp_path_factory.mktemp("zs-models")
    return {f: (root / f, save_tiny_contrastive(f, root / f)) for f in ("clip", "siglip")}


@pytest.mark.realdata
@pytest.mark.parametrize("family", ["clip", "siglip"])
def test_logits_equal_the_models_logits_per_image(
    family: str, contrastive: dict[str, tuple[Path, object]], busi_root: Path
) -> None:
    from transformers import AutoImageProcessor

    folder, model = contrastive[family]
    rows = np.array([0, 7, 400, 779], dtype=np.int64)
    backbone = create_backbone(f"hf:{folder}", pretrained=True).eval()
    tower = load_text_tower(backbone)
    reader = reader_for(backbone, image_size=None, device=torch.device("cpu"))
    with torch.no_grad():
        ours = tower.logits(backbone(reader.read(busi_root / "bus", rows)), tower.embed(TEXTS))
    images = EpisodeLoader(dtype="uint8").images(busi_root / "bus", rows).numpy()
    pil = [Image.fromarray(im[0]).convert("RGB") for im in images]
    proc = AutoImageProcessor.from_pretrained(folder, use_fast=False)
    pixels = proc(images=pil, return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        theirs = model(input_ids=tower.token_ids(TEXTS), pixel_values=pixels).logits_per_image  # type: ignore[operator]
    assert ours.shape == theirs.shape == (4, 3)
    assert relative_error(ours, theirs) <= 1e-4


def test_scores_follow_the_authors_rules() -> None:
    logits = torch.tensor([[1.0, 3.0, 0.5], [2.0, -1.0, 0.0]])
    multi = zero_shot_scores(logits, "MULTICLASS_CLASSIFICATION", None)
    assert np.allclose(multi, torch.softmax(logits.double(), 1).numpy())
    binary = zero_shot_scores(logits[:, :2], "BINARY_CLASSIFICATION", None)
    assert binary.shape == (2, 1)  # class 1 minus class 0
    assert np.allclose(binary[:, 0], 1 / (1 + np.exp(-np.array([2.0, -3.0]))))
    nothing = torch.tensor([1.0, 0.0])
    labels = zero_shot_scores(logits, "MULTILABEL_CLASSIFICATION", nothing)
    assert np.allclose(labels, 1 / (1 + np.exp(-(logits - nothing[:, None]).double().numpy())))
    with pytest.raises(ValueError, match="nothing"):
        zero_shot_scores(logits, "MULTILABEL_CLASSIFICATION", None)


def test_prompt_sets_and_files(tmp_path: Path) -> None:
    authors = prompt_set("domain-task")
    assert authors.for_class(TASK, 2, "malignant") == [
        "A Breast ultrasound image where the case category is malignant"
    ]
    assert prompt_set("class-name").for_class(TASK, 0, "normal_tissue") == ["normal tissue"]
    ensemble = prompt_set().for_class(TASK, 1, "benign")
    assert "a breast ultrasound image showing benign" in ensemble and "benign" in ensemble
    assert prompt_set().for_nothing(TASK)[0] == "nothing"
    mine = tmp_path / "prompts.yaml"
    mine.write_text(
        "templates: ['an ultrasound of {class_name} tissue']\n"
        "classes: {malignant: [a malignant tumour, a cancer]}\nnothing: a normal scan\n",
        encoding="utf-8",
    )
    pset = prompt_set("ensemble", mine)
    assert pset.for_class(TASK, 1, "benign") == ["an ultrasound of benign tissue"]
    assert pset.for_class(TASK, 2, "malignant") == ["a malignant tumour", "a cancer"]
    assert pset.for_nothing(TASK) == ["a normal scan"] and pset.sha256 is not None
    with pytest.raises(UnknownNameError, match="domain-task"):
        prompt_set("domain_task")
    bad = {
        "other: [x]\n": "a prompts file is a mapping",
        "templates: ['an image of {label}']\n": "a template without {class_name}",
        "templates: ['{class_name} in {organ}']\n": "cannot be filled in",
        "templates: []\n": "a list of prompts expected",
        "classes: [a, b]\n": "classes maps",
        "templates: [unclosed\n": "not valid UTF-8 YAML",
    }
    for text, message in bad.items():
        mine.write_text(text, encoding="utf-8")
        with pytest.raises(FormatError, match=message) as caught:
            prompt_set("ensemble", mine).for_class(TASK, 0, "normal")
        assert str(mine) in str(caught.value) and "\n" not in str(caught.value)


def _run(root: Path, out: Path, backbone: str, **options: object) -> object:
    cfg = FewShotConfig(method="zero-shot", backbone=backbone, pretrained=True).with_overrides(
        **options
    )
    plan = EpisodePlan(shots=1, queries=5, episodes=6, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        return run_fewshot(root, "bus:case category", cfg, episodes=plan, run=RunSettings(out))


@pytest.mark.realdata
def test_zero_shot_runs_on_busi_and_records_its_prompts(
    contrastive: dict[str, tuple[Path, object]],
    busi_root: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = contrastive["clip"][0]
    record = _run(busi_root, tmp_path / "zs", f"hf:{folder}")
    for metric in ("auroc", "balanced_accuracy", "ece", "brier", "f1_macro"):
        assert 0.0 <= record.summary[metric]["mean"] <= 1.0, metric  # type: ignore[attr-defined]
    details = read_run(tmp_path / "zs").details["method_details"]
    assert details["source"] == "ensemble" and set(details["classes"]) == {"0", "1", "2"}
    malignant = next(c for c in details["classes"].values() if c["name"] == "malignant")
    assert "a breast ultrasound image showing malignant" in malignant["prompts"]
    prompts = tmp_path / "p.yaml"
    prompts.write_text("classes: {benign: [a benign lesion]}\n", encoding="utf-8")
    args = ["fewshot", "--root", str(busi_root), "--target", "bus:case category"]
    args += ["--method", "zero-shot", "--backbone", f"hf:{folder}", "--prompts", str(prompts)]
    args += ["--shots", "1", "--query", "5", "--episodes", "4", "--out", str(tmp_path / "cli")]
    result = CliRunner().invoke(app, [*args, "-q"])
    assert result.exit_code == 0, result.output
    recorded = read_run(tmp_path / "cli").details["method_details"]
    assert recorded["sha256"] and recorded["classes"]["1"]["prompts"] == ["a benign lesion"]
    prompts.write_text("classes: {benign: [x], cancer: [y]}\n", encoding="utf-8")
    with pytest.raises(SystemExit) as ended:
        main([*args[:-2], "--out", str(tmp_path / "bad"), "-q"])
    err = capsys.readouterr().err
    assert ended.value.code == 2 and "cancer" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "bad" / "run.json").exists()


def test_backbones_without_a_text_tower_are_refused(
    contrastive: dict[str, tuple[Path, object]], tmp_path: Path
) -> None:
    save_tiny("vit", tmp_path / "vit")
    vit = create_backbone(f"hf:{tmp_path / 'vit'}", pretrained=True)
    assert "needs a text tower" in str(text_problem(vit))
    clip = contrastive["clip"][0]
    cls_pooled = create_backbone(f"hf:{clip}@pool=cls", pretrained=True)
    assert "--pool projected" in str(text_problem(cls_pooled))
    bare = tmp_path / "notok"
    bare.mkdir()
    for f in clip.iterdir():
        if not f.name.startswith("tokenizer"):
            (bare / f.name).write_bytes(f.read_bytes())
    no_tokenizer = create_backbone(f"hf:{bare}", pretrained=True)
    assert "tokenizer files" in str(text_problem(no_tokenizer))
    with pytest.raises(OptionError, match="zero-shot needs a text tower"):
        load_text_tower(vit)
    assert json.loads((clip / "config.json").read_text())["model_type"] == "clip"
