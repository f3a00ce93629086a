"""``medimeta weights get`` for hub models against a local hub (tests/models/hub_server.py on
127.0.0.1, given as $HF_ENDPOINT; the cache under $HF_HOME): only the files the model needs,
at the pinned revision, into the Hugging Face cache layout; then the model runs offline. And
the offline / unreachable failures: one line, at once, naming the fetch command and the folder.
No test touches the network.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from medimeta.cli.app import main
from medimeta.models import create_backbone
from medimeta.models.hf.table import get_named
from models.hf_helpers import relative_error, save_tiny
from models.hub_server import HubServer

COMMIT = "c0ffee" + "0" * 34
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny_dino(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hub-src") / "dino"
    save_tiny("dinov2", folder)
    return folder


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[HubServer]:
    for env in ("HF_HUB_OFFLINE", "MEDIMETA_OFFLINE", "HF_HUB_CACHE"):
        monkeypatch.delenv(env, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    with HubServer() as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        yield server


def _get(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(["weights", "get", *args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_get_fetches_only_what_the_model_needs(
    hub: HubServer, tiny_dino: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = {
        "pytorch_model.bin": b"not needed: there is a safetensors file",
        "README.md": b"# tiny",
        "tf_model.h5": b"tf weights",
        "tokenizer.json": b"{}",
    }
    hub.state.add_folder("org/tiny-dino", tiny_dino, COMMIT, **extra)
    code, out, err = _get(["hf:org/tiny-dino", "-q"], capsys)
    assert code == 0, err
    assert hub.state.gets("org/tiny-dino") == [
        "config.json",
        "model.safetensors",
        "preprocessor_config.json",
    ]
    snapshot = tmp_path / "hf-home" / "hub" / "models--org--tiny-dino" / "snapshots" / COMMIT
    assert f"ready at {snapshot}" in out
    assert (snapshot / "model.safetensors").read_bytes() == (
        tiny_dino / "model.safetensors"
    ).read_bytes()
    # a second get is answered from the cache, without asking the hub for a file
    before = len(hub.state.log)
    assert _get(["hf:org/tiny-dino"], capsys)[0] == 0
    assert len(hub.state.log) == before
    # --text adds the tokenizer files
    assert _get(["hf:org/tiny-dino", "--text", "--force", "-q"], capsys)[0] == 0
    assert "tokenizer.json" in hub.state.gets("org/tiny-dino")


def test_fetched_model_runs_offline(
    hub: HubServer,
    tiny_dino: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    hub.state.add_folder("org/tiny-dino", tiny_dino, COMMIT)
    assert _get(["hf:org/tiny-dino", "-q"], capsys)[0] == 0
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing there
    backbone = create_backbone("hf:org/tiny-dino", pretrained=True).eval()
    local = create_backbone(f"hf:{tiny_dino}", pretrained=True).eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert relative_error(backbone(x), local(x)) == 0.0
    described = backbone.describe()
    assert described["hf"]["hub_id"] == "org/tiny-dino" and described["hf"]["commit"] == COMMIT
    digest = hashlib.sha256((tiny_dino / "model.safetensors").read_bytes()).hexdigest()
    assert described["weights"]["sha256"] == digest  # the blob's name is its sha256: checked


def test_named_model_at_its_pinned_revision(
    hub: HubServer, tiny_dino: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    entry = get_named("dinov2_vitb14")
    assert entry.pinned
    hub.state.add_folder(entry.hub_id, tiny_dino, entry.revision)
    hub.state.repos[entry.hub_id].branches = ()  # only the pinned commit exists
    code, _, err = _get(["dinov2_vitb14", "-q"], capsys)
    assert code == 0, err
    asked = [p for _, p in hub.state.log if "/resolve/" in p]
    assert asked and all(f"/resolve/{entry.revision}/" in p for p in asked)
    backbone = create_backbone("dinov2_vitb14", pretrained=True)
    assert backbone.pooling == "cls+mean" and backbone.describe()["hf"]["named"] == "dinov2_vitb14"
    assert backbone.describe()["hf"]["commit"] == entry.revision
    # and through the hub id, any case
    assert create_backbone("hf:Facebook/DINOv2-base", pretrained=False).num_features == 64


def test_pytorch_bin_only_without_safetensors(
    hub: HubServer, tiny_dino: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from safetensors.torch import load_file

    legacy = tmp_path / "legacy"  # an older repository: the weights as pytorch_model.bin only
    legacy.mkdir()
    torch.save(load_file(str(tiny_dino / "model.safetensors")), legacy / "pytorch_model.bin")
    for name in ("config.json", "preprocessor_config.json"):
        (legacy / name).write_bytes((tiny_dino / name).read_bytes())
    assert (legacy / "pytorch_model.bin").is_file() and not (legacy / "model.safetensors").exists()
    hub.state.add_folder("org/legacy", legacy, COMMIT)
    assert _get(["hf:org/legacy", "-q"], capsys)[0] == 0
    assert "pytorch_model.bin" in hub.state.gets("org/legacy")
    backbone = create_backbone("hf:org/legacy", pretrained=True).eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        reference = create_backbone(f"hf:{tiny_dino}", pretrained=True).eval()(x)
        assert relative_error(backbone(x), reference) <= 1e-6


@pytest.mark.parametrize("how", ["HF_HUB_OFFLINE", "MEDIMETA_OFFLINE", "--offline", "closed"])
def test_offline_or_unreachable_fails_at_once(
    how: str,
    hub: HubServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["dinov2_vitb14"]
    if how == "--offline":
        args.append("--offline")
    elif how == "closed":
        monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    else:
        monkeypatch.setenv(how, "1")
    t0 = time.perf_counter()
    code, _, err = _get(args, capsys)
    seconds = time.perf_counter() - t0
    assert code == 2 and seconds < 3.0
    assert hub.state.log == []  # the local hub was never asked
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err
    where = tmp_path / "hf-home" / "hub" / "models--facebook--dinov2-base"
    assert "medimeta weights get dinov2_vitb14" in err and str(where) in err


def _cli(args: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], float]:
    full = {**os.environ, **env, "PYTHONPATH": str(REPO / "src")}
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "medimeta", *args], capture_output=True, text=True, env=full
    )
    return proc, time.perf_counter() - t0


@pytest.mark.parametrize(
    "args",
    [
        ["embed", "bus", "--backbone", "dinov2_vitb14"],
        ["fewshot", "--target", "bus:case category", "--backbone", "hf:clip_vit_base_patch16"],
        ["weights", "get", "dinov2_vitg14"],
    ],
)
def test_absent_named_model_fails_in_a_fresh_process_under_3s(
    args: list[str], tmp_path: Path
) -> None:
    """The command as a user runs it (a new interpreter): offline, a named model that is not
    in the cache fails in under 3 s with one line naming ``weights get`` and the folder."""
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "home"), "MEDIMETA_ROOT": str(tmp_path)}
    proc, seconds = _cli(args, env)
    assert proc.returncode == 2 and seconds < 3.0, (seconds, proc.stderr)
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "medimeta weights get " in proc.stderr
    assert str(tmp_path / "home" / "hub" / "models--") in proc.stderr
