"""``medimeta download`` end to end against the local server, then the loader."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from fetch_helpers import cli_app, dataset_zip
from fetch_server import Fault, ZenodoStub
from typer.testing import CliRunner

from medimeta.cli.download import human_bytes
from medimeta.data.dataset import MedIMeta
from medimeta.fetch import is_installed

REC = "7884735"


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli_app(), ["download", *args])
    return result.exit_code, result.stdout, result.stderr


def test_download_bus_then_load_it(stub: ZenodoStub, tmp_path: Path) -> None:
    stub.add(REC, "bus.zip", dataset_zip("bus"))
    stub.queue(stub.file_path(REC, "bus.zip"), Fault(drop_after=50_000))
    root = tmp_path / "MedIMeta"
    code, out, err = _run("bus", "--root", str(root), "--mirror", stub.base)
    assert code == 0, err
    assert f"bus: ready at {root / 'bus'}" in out
    ds = MedIMeta(root, "bus", "case category", split="train")
    assert len(ds) == 4
    image, label = ds[0]
    assert image.shape == (1, 224, 224) and label.dtype == torch.int64
    assert MedIMeta(root, "bus", "malignancy")[0][1].shape == (1,)


def test_dry_run_prints_plan_and_total(stub: ZenodoStub, toy_zip: bytes, tmp_path: Path) -> None:
    stub.add(REC, "toy_a.zip", toy_zip)
    stub.add(REC, "toy_b.zip", b"y" * 2_500_000)
    code, out, _ = _run("--all", "--dry-run", "--root", str(tmp_path), "--mirror", stub.base)
    assert code == 0
    total = len(toy_zip) + 2_500_000
    assert f"would download 2 files, {human_bytes(total)} ({total:,} bytes)" in out
    assert "toy_a" in out and "toy_b" in out
    assert list(tmp_path.iterdir()) == []
    assert stub.requests(stub.file_path(REC, "toy_a.zip")) == []


def test_all_quiet_installs_everything(stub: ZenodoStub, tmp_path: Path) -> None:
    stub.add(REC, "toy_a.zip", dataset_zip("toy_a"))
    stub.add(REC, "toy_b.zip", dataset_zip("toy_b", top_folder=False))
    code, out, err = _run("--all", "-q", "--root", str(tmp_path), "--mirror", stub.base)
    assert code == 0, err
    # quiet: no progress bars or status lines, only where each dataset went
    assert out.splitlines() == [f"{i}: ready at {tmp_path / i}" for i in ("toy_a", "toy_b")]
    assert err == ""
    assert is_installed(tmp_path, "toy_a") and is_installed(tmp_path, "toy_b")


def test_failures_are_reported_and_others_still_installed(stub: ZenodoStub, tmp_path: Path) -> None:
    stub.add(REC, "toy_a.zip", dataset_zip("toy_a"), md5="f" * 32)
    stub.add(REC, "toy_b.zip", dataset_zip("toy_b"))
    code, _, err = _run(
        "toy_a", "toy_b", "--root", str(tmp_path), "--mirror", stub.base, "--retries", "1"
    )
    assert code == 1
    assert "error: toy_a:" in err and "f" * 32 in err and "1 of 2 failed: toy_a" in err
    assert is_installed(tmp_path, "toy_b") and not (tmp_path / "toy_a").exists()


def test_offline_all_from_dir(tmp_path: Path) -> None:
    zips = tmp_path / "zips"
    zips.mkdir()
    (zips / "toy_a.zip").write_bytes(dataset_zip("toy_a"))
    (zips / "toy_b.zip").write_bytes(dataset_zip("toy_b", top_folder=False))
    root = tmp_path / "root"
    code, out, _ = _run("--all", "--dry-run", "--root", str(root), "--offline", "--from", str(zips))
    assert code == 0 and "would download 0 files" in out and "local" in out
    code, _, err = _run("--all", "--root", str(root), "--offline", "--from", str(zips), "-q")
    assert code == 0, err
    assert is_installed(root, "toy_a") and is_installed(root, "toy_b")


@pytest.mark.parametrize("args", [[], ["toy_a", "--all"]])
def test_ids_or_all_required(tmp_path: Path, args: list[str]) -> None:
    code, _, err = _run(*args, "--root", str(tmp_path))
    assert code == 2 and "give dataset ids or --all" in err


def test_human_bytes() -> None:
    assert [human_bytes(n) for n in (None, 999, 1000, 2_500_000, 7 * 10**12)] == [
        "?",
        "999 B",
        "1.0 kB",
        "2.5 MB",
        "7000.0 GB",
    ]


def test_dataset_download_flag_uses_the_mirror(
    stub: ZenodoStub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stub.add(REC, "bus.zip", dataset_zip("bus"))
    monkeypatch.setenv("MEDIMETA_MIRROR", stub.base)
    ds = MedIMeta(tmp_path, "bus", "case category", split="test", download=True)
    assert len(ds) == 1 and is_installed(tmp_path, "bus")
    n_requests = len(stub.state.log)
    MedIMeta(tmp_path, "bus", "case category", download=True)  # installed: no request
    assert len(stub.state.log) == n_requests


def test_offline_unknown_id_gets_a_did_you_mean(tmp_path: Path) -> None:
    (tmp_path / "zips").mkdir()
    code, out, err = _run(
        "buss", "--offline", "--from", str(tmp_path / "zips"), "--root", str(tmp_path)
    )
    assert code == 1 and "did you mean 'bus'" in err and "Traceback" not in out + err
    assert "curl" not in err  # no download line for a wrong name


def test_offline_hint_is_a_command_to_paste(tmp_path: Path) -> None:
    (tmp_path / "zips").mkdir()
    code, _, err = _run(
        "bus", "--offline", "--from", str(tmp_path / "zips"), "--root", str(tmp_path)
    )
    assert code == 1 and "(record file list not cached)" not in err
    target = tmp_path / ".medimeta" / "downloads" / "bus.zip"
    url = f"https://zenodo.org/records/{REC}/files/bus.zip?download=1"
    assert f"  curl -L -C - -o '{target}' '{url}'" in err.splitlines()
    assert f"  mkdir -p '{target.parent}'" in err.splitlines()


def test_dry_run_without_the_record_plans_from_the_catalog(tmp_path: Path) -> None:
    unreachable = "http://127.0.0.1:9"  # nothing listens there
    args = ["bus", "pbc", "--dry-run", "--root", str(tmp_path), "--mirror", unreachable]
    result = CliRunner().invoke(
        cli_app(), ["download", *args, "--retries", "0"], env={"COLUMNS": "250"}
    )
    code, out, err = result.exit_code, result.stdout, result.stderr
    assert code == 0, err
    assert out.count("unreachable") >= 2 and "planned from the catalog" in out
    assert f"{unreachable}/records/{REC}/files/pbc.zip?download=1" in out.replace("\n", "")
    assert not any(tmp_path.iterdir())  # a dry run writes nothing
    code, _, err = _run("buss", "--dry-run", "--root", str(tmp_path), "--mirror", unreachable)
    assert code == 1 and "did you mean 'bus'" in err
