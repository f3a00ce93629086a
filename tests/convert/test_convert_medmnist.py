"""MedMNIST .npz -> MedIMeta: official splits and labels, MD5 check, channels, resizing."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from fixtures.writing import make_npz
from medimeta.convert.medmnist import convert_medmnist
from medimeta.errors import ChecksumMismatchError, FormatError, UnknownNameError
from medimeta.format.reader import DatasetFolder, find_datasets
from medimeta.format.verify import verify_dataset

BREAST = "medmnist-v2-28/breastmnist.npz"
PNEUMONIA = "medmnist-v2-28/pneumoniamnist_modified-train.npz"


@pytest.mark.realdata
def test_real_breastmnist_keeps_official_splits_labels_and_pixels(
    realdata: Path, tmp_path: Path
) -> None:
    path = convert_medmnist(realdata / BREAST, tmp_path, workers=2)
    assert path == tmp_path / "breastmnist"
    assert verify_dataset(path, deep=True).ok
    folder = DatasetFolder(path)
    assert dict(folder.spec.splits) == {"train": 546, "val": 78, "test": 156}
    assert dict(folder.spec.original_splits) == dict(folder.spec.splits)
    task = folder.spec.task("malignancy")
    assert task.target.short == "binary" and dict(task.labels) == {
        0: "malignant",
        1: "normal, benign",
    }
    with np.load(realdata / BREAST) as npz:
        labels = np.concatenate([npz[f"{s}_labels"][:, 0] for s in ("train", "val", "test")])
        images = np.concatenate([npz[f"{s}_images"] for s in ("train", "val", "test")])
    assert np.array_equal(folder.labels("malignancy"), labels)
    assert folder.split_indices("val").tolist() == list(range(546, 624))
    assert folder.split_indices("test", original=True).tolist() == list(range(624, 780))
    store = folder.image_store()
    for i in (0, 545, 546, 779):  # nearest neighbour: every source pixel becomes an 8x8 block
        assert np.array_equal(store.read(i), np.kron(images[i], np.ones((8, 8), np.uint8)))
    info = yaml.safe_load((path / "info.yaml").read_text())
    assert info["converted_from"]["md5_verified"] is True
    assert info["subject_overlaps"] == ["bus"]
    frame = folder.annotations
    assert frame["original_filepath"][546] == "breastmnist.npz:val_images[0]"
    assert frame["original_image_size"][0] == "(28, 28)" and bool(frame["upscaled"][0])


@pytest.mark.realdata
def test_corrupted_or_modified_breastmnist_is_rejected(realdata: Path, tmp_path: Path) -> None:
    corrupted = tmp_path / "corrupt" / "breastmnist.npz"
    corrupted.parent.mkdir()
    data = bytearray((realdata / BREAST).read_bytes())
    data[len(data) // 2] ^= 0xFF
    corrupted.write_bytes(bytes(data))
    with pytest.raises(ChecksumMismatchError, match="750601b1f35ba3300ea97c75c52ff8f6") as err:
        convert_medmnist(corrupted, tmp_path / "out")
    assert "corrupted or was modified" in str(err.value) and "--no-md5-check" in str(err.value)
    modified = tmp_path / "mod" / "breastmnist.npz"
    modified.parent.mkdir()
    with np.load(realdata / BREAST) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["test_labels"][0] = 1 - arrays["test_labels"][0]
    np.savez_compressed(modified, **arrays)
    with pytest.raises(ChecksumMismatchError):
        convert_medmnist(modified, tmp_path / "out")
    assert find_datasets(tmp_path / "out") == {}
    path = convert_medmnist(modified, tmp_path / "out", check_md5=False)
    info = yaml.safe_load((path / "info.yaml").read_text())
    assert info["converted_from"]["md5_verified"] is False
    assert DatasetFolder(path).labels("malignancy")[624] == arrays["test_labels"][0, 0]


@pytest.mark.realdata
def test_modified_pneumoniamnist_needs_its_flag_and_is_flagged(
    realdata: Path, tmp_path: Path
) -> None:
    with pytest.raises(UnknownNameError, match="--flag"):
        convert_medmnist(realdata / PNEUMONIA, tmp_path)
    with pytest.warns(UserWarning, match="train: 3882 images, MedMNIST 3.0.2 lists 4708"):
        path = convert_medmnist(realdata / PNEUMONIA, tmp_path, flag="pneumoniamnist")
    folder = DatasetFolder(path)
    assert dict(folder.spec.splits) == {"train": 3882, "val": 524, "test": 624}
    assert "4708" in folder.info["notes"] and verify_dataset(path).ok


def test_rgb_64px_bicubic_keeps_three_channels(tmp_path: Path) -> None:
    arrays = make_npz(
        tmp_path / "pathmnist_64.npz", size=64, channels=3, counts=(5, 2, 3), classes=9
    )
    with pytest.warns(UserWarning, match="counts differ"):
        path = convert_medmnist(tmp_path / "pathmnist_64.npz", tmp_path / "out", resample="bicubic")
    folder = DatasetFolder(path)
    assert folder.id == "pathmnist_64" and folder.num_channels == 3
    assert folder.image_store().read(0).shape == (224, 224, 3)
    assert (
        folder.labels("tissue class").tolist()
        == np.concatenate([arrays[f"{s}_labels"][:, 0] for s in ("train", "val", "test")]).tolist()
    )
    assert verify_dataset(path).ok


def test_multilabel_ordinal_and_224px(tmp_path: Path) -> None:
    chest = make_npz(
        tmp_path / "chestmnist.npz", size=28, channels=1, counts=(4, 2, 2), label_width=14
    )
    retina = make_npz(
        tmp_path / "retinamnist_224.npz", size=224, channels=3, counts=(3, 1, 2), classes=5
    )
    with pytest.warns(UserWarning):
        chest_path = convert_medmnist(tmp_path / "chestmnist.npz", tmp_path / "out")
        retina_path = convert_medmnist(
            tmp_path / "retinamnist_224.npz", tmp_path / "out", workers=2
        )
    labels = DatasetFolder(chest_path).labels("disease labels")
    assert labels.shape == (8, 14)
    assert np.array_equal(labels[:4], chest["train_labels"])
    retina_folder = DatasetFolder(retina_path)
    assert retina_folder.spec.task("DR level").target.short == "ordinal"
    assert np.array_equal(retina_folder.image_store().read(3), retina["val_images"][0])
    assert not (tmp_path / "out" / ".medimeta" / "cache").exists()


def test_wrong_layouts_are_named(tmp_path: Path) -> None:
    make_npz(tmp_path / "pathmnist.npz", size=28, channels=1, counts=(2, 1, 1))
    with pytest.raises(FormatError, match="unexpected layout for pathmnist"):
        convert_medmnist(tmp_path / "pathmnist.npz", tmp_path / "out")
    np.savez_compressed(tmp_path / "octmnist.npz", images=np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(FormatError, match="not a MedMNIST 2D archive"):
        convert_medmnist(tmp_path / "octmnist.npz", tmp_path / "out")
    shutil.copy(tmp_path / "pathmnist.npz", tmp_path / "notmnist.npz")
    with pytest.raises(UnknownNameError, match="notmnist"):
        convert_medmnist(tmp_path / "notmnist.npz", tmp_path / "out")
