"""MedMNIST 2D files: published MD5 first, record MD5 otherwise, then conversion."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fetch_helpers import cli_app, make_dataset_folder
from fetch_server import ZenodoStub
from typer.testing import CliRunner

from medimeta.errors import ChecksumMismatchError, DatasetNotFoundError, UnknownNameError
from medimeta.fetch import MEDMNIST_RECORD, download_medmnist, install_medmnist, read_marker
from medimeta.fetch.files import md5_file
from medimeta.fetch.medmnist import PUBLISHED_MD5
from medimeta.format.verify import verify_dataset

BREAST_28 = Path("medmnist-v2-28") / "breastmnist.npz"


def _npz(n: int = 5, size: int = 64) -> bytes:
    rng = np.random.default_rng(0)
    arrays = {}
    for split in ("train", "val", "test"):
        arrays[f"{split}_images"] = rng.integers(0, 256, (n, size, size), dtype=np.uint8)
        arrays[f"{split}_labels"] = rng.integers(0, 8, (n, 1), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


@pytest.mark.realdata
def test_real_breastmnist_matches_published_md5(
    stub: ZenodoStub, fast: dict[str, Any], tmp_path: Path, realdata: Path
) -> None:
    stub.add(MEDMNIST_RECORD, "breastmnist.npz", (realdata / BREAST_28).read_bytes())
    path = download_medmnist("breastmnist", tmp_path, size=28, **fast)
    assert path == tmp_path / ".medimeta" / "downloads" / "breastmnist.npz"
    assert md5_file(path) == PUBLISHED_MD5["breastmnist.npz"]
    with np.load(path) as npz:
        assert npz["train_images"].shape == (546, 28, 28)


def test_published_md5_wins_over_the_record(
    stub: ZenodoStub, fast: dict[str, Any], tmp_path: Path
) -> None:
    # The mirror serves another file under the name, and its manifest agrees with it.
    stub.add(MEDMNIST_RECORD, "breastmnist.npz", _npz())
    with pytest.raises(ChecksumMismatchError, match=PUBLISHED_MD5["breastmnist.npz"]):
        download_medmnist("breastmnist", tmp_path, size=28, **fast)
    assert not (tmp_path / ".medimeta" / "downloads" / "breastmnist.npz").exists()


def test_unknown_file_in_record(stub: ZenodoStub, fast: dict[str, Any], tmp_path: Path) -> None:
    stub.add(MEDMNIST_RECORD, "bloodmnist.npz", _npz())
    with pytest.raises(UnknownNameError, match=r"bloodmnist_224\.npz"):
        download_medmnist("medmnist:bloodmnist", tmp_path, size=224, **fast)


def test_install_runs_converter_and_records_completion(
    stub: ZenodoStub, fast: dict[str, Any], tmp_path: Path
) -> None:
    entry = stub.add(MEDMNIST_RECORD, "bloodmnist_64.npz", _npz())
    calls: list[tuple[Path, Path, str | None]] = []

    def converter(
        npz_path: Path, root: Path, dataset_id: str | None = None, overwrite: bool = False
    ) -> Path:
        calls.append((npz_path, root, dataset_id))
        assert md5_file(npz_path) == entry.md5
        return make_dataset_folder(root, dataset_id or "bloodmnist_64")

    kw = {**fast, "size": 64, "dataset_id": "blood64", "converter": converter}
    path = install_medmnist("medmnist:bloodmnist", tmp_path, **kw)
    assert path == tmp_path / "blood64"
    assert [(c[0].name, c[1], c[2]) for c in calls] == [("bloodmnist_64.npz", tmp_path, "blood64")]
    marker = read_marker(path)
    assert marker is not None and marker["md5"] == entry.md5
    assert marker["converted_from"] == "medmnist:bloodmnist:64"
    assert not (tmp_path / ".medimeta" / "downloads" / "bloodmnist_64.npz").exists()
    assert install_medmnist("bloodmnist", tmp_path, **kw) == path  # marked: nothing to do
    assert len(calls) == 1


def test_offline_medmnist_needs_a_local_copy(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"breastmnist_224\.npz"):
        download_medmnist("breastmnist", tmp_path, offline=True, quiet=True)
    local = tmp_path / "npz"
    local.mkdir()
    (local / "breastmnist_224.npz").write_bytes(_npz())
    path = download_medmnist("breastmnist", tmp_path, offline=True, from_dir=local, quiet=True)
    assert path == local / "breastmnist_224.npz"


@pytest.mark.realdata
def test_cli_converts_real_breastmnist(stub: ZenodoStub, tmp_path: Path, realdata: Path) -> None:
    pytest.importorskip("medimeta.convert.medmnist")
    stub.add(MEDMNIST_RECORD, "breastmnist.npz", (realdata / BREAST_28).read_bytes())
    args = ["download", "medmnist:breastmnist", "--size", "28", "--root", str(tmp_path)]
    result = CliRunner().invoke(cli_app(), [*args, "--mirror", stub.base, "-q"])
    assert result.exit_code == 0, result.stderr
    folders = [p for p in tmp_path.iterdir() if (p / "info.yaml").is_file()]
    assert len(folders) == 1 and verify_dataset(folders[0]).ok
    assert read_marker(folders[0]) is not None
