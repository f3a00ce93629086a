"""Hostile weights: truncated files of every format, stray files named like registered weights,
unknown names, a damaged registry. Each is one clear line; nothing is registered or loaded.

Names resolve only to registered entries (``weights add`` files and the weights table) and
files only to explicit paths (``./file``, ``dir/file``, absolute): a file in the working
directory that is named like registered weights is an ambiguity, never a silent winner.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from medimeta import paths
from medimeta.cli.app import main
from medimeta.errors import (
    ChecksumMismatchError,
    FormatError,
    OptionError,
    UnknownNameError,
    WeightsNotFoundError,
)
from medimeta.models import weights_table as table
from medimeta.models.registry import create_backbone
from medimeta.models.user_weights import read_registry, register_weights, resolve_pretrained


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(paths.WEIGHTS_ENV, str(tmp_path / "weights"))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)


def _state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return create_backbone("tiny_cnn").state_dict()


def _pth(path: Path) -> Path:
    torch.save(_state(), path)
    return path


def _safetensors(path: Path) -> Path:
    save_file({k: v.contiguous() for k, v in _state().items()}, str(path))
    return path


def _cut(make: Callable[[Path], Path], keep: float) -> Callable[[Path], Path]:
    def write(path: Path) -> Path:
        data = make(path).read_bytes()
        path.write_bytes(data[: int(len(data) * keep)])
        return path

    return write


def _bytes(data: bytes) -> Callable[[Path], Path]:
    def write(path: Path) -> Path:
        path.write_bytes(data)
        return path

    return write


#: class of fault -> (file name, how it is written, words of the error)
FILES: dict[str, tuple[str, Callable[[Path], Path], str]] = {
    "safetensors-truncated": (
        "w.safetensors",
        _cut(_safetensors, 0.6),
        "cannot be read as a .safetensors file (truncated, damaged or not safetensors)",
    ),
    "safetensors-header-only": ("w.safetensors", _cut(_safetensors, 0.01), "safetensors"),
    "safetensors-garbage": ("w.safetensors", _bytes(b"\xff" * 64), ".safetensors file"),
    "safetensors-empty": ("w.safetensors", _bytes(b""), ".safetensors file"),
    "pth-truncated": ("w.pth", _cut(_pth, 0.5), "weights-only torch checkpoint (truncated"),
    "pth-empty": ("w.pth", _bytes(b""), "weights-only torch checkpoint"),
    "pth-not-a-checkpoint": ("w.pt", _bytes(b"PK\x03\x04broken"), "weights-only torch"),
}


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out + out.err


@pytest.mark.parametrize("fault", sorted(FILES))
def test_a_damaged_weights_file_is_one_line_and_not_registered(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fault: str
) -> None:
    name, write, words = FILES[fault]
    path = write(tmp_path / name)
    with pytest.raises(FormatError, match=words.replace("(", r"\(").replace(")", r"\)")):
        create_backbone("tiny_cnn", pretrained=path)
    code, text = _run(["weights", "add", str(path), "--name", "mine"], capsys)
    assert code == 2 and len(text.strip().splitlines()) == 1, text
    assert text.startswith(f"error: {path}: ") and words in text and "Traceback" not in text
    assert "not one of the toolkit's own errors" not in text
    assert read_registry() == {} and not (tmp_path / "weights" / "registry.json").exists()


def _registered(tmp_path: Path) -> Path:
    path = _pth(tmp_path / "mine.pth")
    register_weights(path, "mine", backbone="tiny_cnn")
    return path


def test_a_stray_file_named_like_registered_weights_is_ambiguous(tmp_path: Path) -> None:
    registered = _registered(tmp_path)
    assert resolve_pretrained("mine") == str(registered)
    _pth(Path("mine"))  # ./mine: other weights, same name
    with pytest.raises(OptionError, match=r"--pretrained 'mine' is ambiguous.*pass ./mine"):
        resolve_pretrained("mine")
    assert resolve_pretrained("./mine") == "mine"  # the file, when it is asked for as a file


def test_a_stray_file_named_like_a_table_entry_is_ambiguous() -> None:
    _pth(Path("resnet18"))
    with pytest.raises(OptionError, match="a weights table entry and a file resnet18"):
        resolve_pretrained("resnet18")


def test_a_bare_file_name_is_not_a_path(tmp_path: Path) -> None:
    _pth(Path("model.pth"))
    with pytest.raises(OptionError, match=r"not a registered weights name; fix: pass ./model.pth"):
        resolve_pretrained("model.pth")
    assert resolve_pretrained("./model.pth") == "model.pth"
    assert resolve_pretrained(str(Path("model.pth").resolve())).endswith("model.pth")


def test_unknown_names_and_missing_paths(tmp_path: Path) -> None:
    _registered(tmp_path)
    with pytest.raises(UnknownNameError, match="unknown weights name 'mien'.*did you mean 'mine'"):
        resolve_pretrained("mien")
    with pytest.raises(WeightsNotFoundError, match="nothere.pth: weights file not found"):
        resolve_pretrained("./nothere.pth")
    with pytest.raises(WeightsNotFoundError, match="pretrained weights of 'resnet18'"):
        resolve_pretrained("resnet18")  # a table name, not installed: says how to get it


def test_cli_refuses_ambiguity_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _registered(tmp_path)
    _pth(Path("mine"))
    code, text = _run(["train", "bus", "task", "--pretrained", "mine"], capsys)
    assert code == 2 and "ambiguous" in text and len(text.strip().splitlines()) == 1, text


def test_registered_file_changed_afterwards_is_refused(tmp_path: Path) -> None:
    path = _registered(tmp_path)  # trust on first use: its sha256 is recorded now
    torch.save({k: v + 1 for k, v in _state().items()}, path)
    with pytest.raises(ChecksumMismatchError, match="changed since it was registered"):
        resolve_pretrained("mine")


def test_a_damaged_registry_is_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / "registry.json").write_text('{"version": 1, "weights": {"a": {"path": 3}}')
    with pytest.raises(FormatError, match="not a weights registry"):
        resolve_pretrained("a")


def test_every_table_entry_has_a_full_sha256_and_a_prefix_is_refused() -> None:
    for entry in table.WEIGHTS.values():
        assert entry.full_sha256 and len(entry.sha256) == 64 and entry.size
        assert entry.digest_source
    entry = table.WEIGHTS["resnet18"]
    assert entry.sha256.startswith("f37072fd") and entry.size == 46_830_571
    with pytest.raises(ValueError, match="is not 64 hex digits"):
        dataclasses.replace(entry, sha256="f37072fd")
