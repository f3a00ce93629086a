"""``medimeta weights`` through the real entry point (errors become one ``error:`` line), and
``train --backbone resnet18`` running offline on the weights it installed.

The weights file is a generated stand-in for ``resnet18-f37072fd.pth`` (our ResNet-18 state
dict plus torchvision's ``fc`` keys); the table's checksum is patched to its sha256.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from medimeta import paths
from medimeta.cli.app import main
from medimeta.models import create_backbone
from medimeta.models import weights_table as table
from medimeta.runs.record import read_run
from train.train_toys import make_learnable

FILE = "resnet18-f37072fd.pth"


@pytest.fixture(scope="module")
def standin() -> bytes:
    torch.manual_seed(0)
    state = create_backbone("resnet18").state_dict()
    state["fc.weight"] = torch.randn(1000, 512) * 0.01
    state["fc.bias"] = torch.zeros(1000)
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("weights-train-root")
    make_learnable(root, splits={"train": 12, "val": 3, "test": 6})
    return root


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A fresh weights folder and torch hub cache; one thread (tiny models run fastest)."""
    monkeypatch.setenv(paths.WEIGHTS_ENV, str(tmp_path / "weights"))
    monkeypatch.delenv(table.WEIGHTS_MIRROR_ENV, raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``medimeta ARGS`` as the console script runs it: exit code, stdout, stderr."""
    with pytest.raises(SystemExit) as done:
        main(args)
    out, err = capsys.readouterr()
    return int(done.value.code or 0), out, err


def _train(root: Path, out: Path, backbone: str, pretrained: str) -> list[str]:
    return [
        "train",
        "learn",
        "case category",
        "--root",
        str(root),
        "--backbone",
        backbone,
        "--pretrained",
        pretrained,
        "--image-size",
        "32",
        "--epochs",
        "1",
        "--batch-size",
        "6",
        "--device",
        "cpu",
        "--out",
        str(out),
        "--quiet",
    ]


def _no_network(*args: object, **kwargs: object) -> None:
    raise OSError("the network is off in this test")


@pytest.mark.filterwarnings("ignore::medimeta.evaluate.metrics.UndefinedMetricWarning")
def test_offline_get_refuses_wrong_file_installs_right_one_then_train_runs(
    standin: bytes,
    tiny_root: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = tmp_path / "weights"
    code, _, err = _run(_train(tiny_root, tmp_path / "r0", "resnet18", "imagenet"), capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err  # the first contact
    assert "fix: medimeta weights get resnet18 " in err and "--offline --from DIR" in err

    digest = hashlib.sha256(standin).hexdigest()
    entry = dataclasses.replace(table.WEIGHTS["resnet18"], sha256=digest, size=len(standin))
    monkeypatch.setitem(table.WEIGHTS, "resnet18", entry)
    monkeypatch.setattr(socket.socket, "connect", _no_network)
    src = tmp_path / "dir"
    src.mkdir()
    (src / FILE).write_bytes(b"x" + standin[1:])
    code, _, err = _run(["weights", "get", "resnet18", "--offline", "--from", str(src)], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and err.startswith("error: ")
    assert "nothing was installed" in err
    assert sorted(p.name for p in folder.iterdir() if p.name != ".medimeta") == []

    (src / FILE).write_bytes(standin)
    args = ["weights", "get", "resnet18", "--offline", "--from", str(src), "-q"]
    code, out, _ = _run(args, capsys)
    assert code == 0 and out.strip() == f"resnet18: ready at {folder / FILE}"

    run = tmp_path / "run"
    code, out, err = _run(_train(tiny_root, run, "resnet18", "imagenet"), capsys)
    assert code == 0, err
    weights = json.dumps(read_run(run).to_dict())
    assert str(folder / FILE) in weights and digest in weights


def test_list_and_verify(
    standin: bytes,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    digest = hashlib.sha256(standin).hexdigest()
    entry = dataclasses.replace(table.WEIGHTS["resnet18"], sha256=digest, size=len(standin))
    monkeypatch.setitem(table.WEIGHTS, "resnet18", entry)
    target = tmp_path / "weights" / FILE
    target.parent.mkdir()
    target.write_bytes(standin)
    code, out, _ = _run(["weights", "list", "-q"], capsys)
    rows = {line.split("\t")[0]: line.split("\t")[1:] for line in out.strip().splitlines()}
    assert code == 0 and rows["resnet18"] == ["installed", str(target)]
    assert rows["resnet50"] == ["missing", "-"]
    code, out, _ = _run(["weights", "verify", "resnet18"], capsys)
    assert code == 0 and out.startswith("resnet18: ok")
    target.write_bytes(standin[:-1])
    code, _, err = _run(["weights", "verify"], capsys)
    assert code == 1 and "error: resnet18:" in err and "1 of" in err
    code, _, err = _run(["weights", "verify", "resnet50"], capsys)
    assert code == 1 and "medimeta weights get resnet50" in err


@pytest.mark.filterwarnings("ignore::medimeta.evaluate.metrics.UndefinedMetricWarning")
def test_a_registered_file_is_accepted_by_name(
    tiny_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "mine.pth"
    torch.save(create_backbone("tiny_cnn").state_dict(), path)
    args = ["weights", "add", str(path), "--name", "mine", "--backbone", "tiny_cnn", "-q"]
    code, out, _ = _run(args, capsys)
    registry = tmp_path / "weights" / "registry.json"
    assert code == 0 and out.strip() == f"mine: registered in {registry}"
    run = tmp_path / "run"
    code, _, err = _run(_train(tiny_root, run, "tiny_cnn", "mine"), capsys)
    assert code == 0, err
    result = json.dumps(read_run(run).to_dict())
    assert hashlib.sha256(path.read_bytes()).hexdigest() in result
    path.write_bytes(path.read_bytes() + b"\0")  # changed after registration: refused
    code, _, err = _run(_train(tiny_root, tmp_path / "run2", "tiny_cnn", "mine"), capsys)
    assert code == 2 and "changed since it was registered" in err
