"""The named hub models as data, ``medimeta backbones list`` and the name look-ups."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medimeta.cli.app import main
from medimeta.models.hf.facts import arch_facts
from medimeta.models.hf.families import BY_NAME
from medimeta.models.hf.table import find_named, get_named, named_models

#: The MedIMeta authors' follow-up benchmark (arXiv:2408.08058, medimeta-fsl-benchmark).
AUTHORS_16 = (
    "google/vit-base-patch16-224",
    "google/vit-base-patch16-224-in21k",
    "openai/clip-vit-base-patch16",
    "ikim-uk-essen/BiomedCLIP_ViT_patch16_224",
    "facebook/dinov2-base",
    "microsoft/resnet-18",
    "microsoft/resnet-50",
    "microsoft/resnet-101",
    "openai/clip-vit-large-patch14",
    "google/vit-large-patch16-224",
    "google/vit-large-patch16-224-in21k",
    "facebook/dinov2-large",
    "laion/CLIP-ViT-H-14-laion2B-s32B-b79K",
    "google/vit-huge-patch14-224-in21k",
    "facebook/dinov2-giant",
    "laion/CLIP-ViT-g-14-laion2B-s12B-b42K",
)


def test_table_holds_the_authors_16_and_more() -> None:
    models = named_models()
    assert len(models) >= 20
    hub_ids = {e.hub_id for e in models.values()}
    assert set(AUTHORS_16) <= hub_ids
    assert {e.hub_id for e in models.values() if e.authors} == set(AUTHORS_16)
    for extra in ("microsoft/rad-dino", "microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224"):
        assert extra in hub_ids
    families = {e.family for e in models.values()}
    assert {"siglip", "swin", "convnext"} <= families
    for e in models.values():
        assert e.license and e.citation and e.params > 0 and e.embed_dim > 0
        assert e.pool in BY_NAME[e.family].pools
        assert e.pinned or (e.revision == "main" and not e.revision_verified)
        assert e.revision_source


def test_params_and_widths_follow_from_the_architectures() -> None:
    """Each entry's parameter count and embedding width equal those of its architecture built
    on the meta device (so the numbers are not copied by hand)."""
    wrong = {}
    for e in named_models().values():
        facts = arch_facts(e)
        if facts != (e.params, e.embed_dim):
            wrong[e.name] = (facts, (e.params, e.embed_dim))
    assert not wrong
    # and they are the published sizes (ViT-B/16: 86M, DINOv2-g: 1.1B, ResNet-50: 23.5M)
    assert round(get_named("vit_base_patch16_224").params / 1e6) == 86
    assert round(get_named("dinov2_vitg14").params / 1e8) == 11
    assert round(get_named("ms_resnet50").params / 1e5) == 235


def test_names_do_not_shadow_registered_backbones_or_weights() -> None:
    from medimeta.models import list_backbones
    from medimeta.models.weights_table import WEIGHTS

    names = set(named_models())
    assert not names & set(list_backbones())
    assert not names & set(WEIGHTS)


def test_look_up_by_short_name_or_hub_id() -> None:
    from medimeta.models.registry import canonical_name

    assert find_named("dinov2_vitb14") is find_named("facebook/dinov2-base")
    assert find_named("FACEBOOK/DINOv2-Base") is get_named("dinov2_vitb14")
    assert find_named("facebook/dinov2-nano") is None
    assert canonical_name("dinov2_vitb14@pool=cls") == "hf:dinov2_vitb14@pool=cls"
    assert canonical_name("resnet18") == "resnet18"


def _run(args: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code in (0, None)


def test_backbones_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    entry = get_named("rad_dino")
    snap = tmp_path / "hub" / "models--microsoft--rad-dino" / "snapshots" / entry.revision
    snap.mkdir(parents=True)
    for name in ("config.json", "preprocessor_config.json", "model.safetensors"):
        (snap / name).write_text("{}", encoding="utf-8")
    _run(["backbones", "list", "-q"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == len(named_models()) >= 20
    assert f"rad_dino\tmicrosoft/rad-dino\t{snap}" in lines
    assert "dinov2_vitb14\tfacebook/dinov2-base\t-" in lines
    _run(["backbones", "list", "--json"])
    rows = json.loads(capsys.readouterr().out)
    assert {r["name"] for r in rows if r["local"]} == {"rad_dino"}
    _run(["backbones", "list"])
    out = capsys.readouterr().out
    assert "1 in the local cache" in out and "hf:" in out


def test_docs_list_every_named_model() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "backbones.md").read_text("utf-8")
    missing = [e.name for e in named_models().values() if f"| `{e.name}`" not in docs]
    assert not missing
    for e in named_models().values():
        row = next(line for line in docs.splitlines() if line.startswith(f"| `{e.name}`"))
        assert e.hub_id in row and f"| {e.embed_dim} |" in row and f"{e.params / 1e6:.1f}M" in row


def test_command_line_and_hub_table_import_neither_torch_nor_transformers() -> None:
    """transformers and torch load only when a model is built: ``medimeta --help`` stays fast
    and a missing hub model fails before either is imported."""
    import subprocess
    import sys

    code = (
        "import sys, medimeta.cli.app, medimeta.models.hf, medimeta.models.hf.download\n"
        "from medimeta.cli.options import check_hub_backbones\n"
        "bad = [m for m in ('torch', 'transformers', 'huggingface_hub') if m in sys.modules]\n"
        "print(bad)"
    )
    env = {"PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src"), "PATH": ""}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
