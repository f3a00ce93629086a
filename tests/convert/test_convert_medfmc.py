"""MedFMC (ChestDR, Endo, ColonPath) -> MedIMeta from generated folders in MedFMC's layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fixtures.writing import write_image
from medimeta.convert.medfmc import MEDFMC, convert_medfmc, parse_line
from medimeta.errors import LabelError, SourceTreeError
from medimeta.format.reader import DatasetFolder
from medimeta.format.verify import verify_dataset


def _medfmc(
    tmp: Path,
    key: str,
    train: list[tuple[str, str]],
    test: list[tuple[str, str]],
    mode: str = "RGB",
) -> Path:
    base = tmp / key
    for i, (name, _) in enumerate(train + test):
        write_image(base / "images" / name, (40 + i % 3, 32), mode, seed=i)
    (base / "trainval.txt").write_text("".join(f"{n} {lab}\n" for n, lab in train))
    (base / "test_WithLabel.txt").write_text("".join(f"{n} {lab}\n" for n, lab in test))
    return base


def _hot(i: int, width: int) -> list[int]:
    return [int(b) for b in format(i % (2**width), f"0{width}b")]


def test_colon_names_with_spaces_binary_and_slide_ids(tmp_path: Path) -> None:
    slides = ["slide A", "slide B", "slide C", "slide D", "slide E", "slide F"]
    train = [(f"{s}_{x:04d}.png", str((k + x) % 2)) for k, s in enumerate(slides) for x in (1, 2)]
    test = [("slide Z_0001.png", "1"), ("slide Z_0002.png", "0")]
    path = convert_medfmc(_medfmc(tmp_path, "colon", train, test), tmp_path / "out")
    assert path.name == "medfmc_colon" and verify_dataset(path).ok
    folder = DatasetFolder(path)
    frame = folder.annotations
    assert set(frame["patient_id"]) == {*slides, "slide Z"}  # name minus its last 9 characters
    assert frame.groupby("patient_id")["split"].nunique().max() == 1
    assert (frame["original_split"] == "test").sum() == 2
    assert set(frame.loc[frame["original_split"] == "test", "split"]) == {"test"}
    assert set(frame["split"]) == {"train", "val", "test"}
    by_name = dict(zip(frame["original_filepath"], folder.labels("tumour tissue"), strict=True))
    assert by_name["images/slide B_0001.png"] == 0 and by_name["images/slide Z_0001.png"] == 1


def test_chest_comma_lists_and_endo_space_lists_are_multilabel(tmp_path: Path) -> None:
    chest = [(f"p{i}.png", ",".join(map(str, _hot(i * 37, 19)))) for i in range(8)]
    path = convert_medfmc(
        _medfmc(tmp_path, "chest", chest[:6], chest[6:], mode="L"), tmp_path / "out", workers=2
    )
    folder = DatasetFolder(path)
    assert folder.num_channels == 1
    labels = folder.labels("thoracic findings")
    order = folder.annotations["original_filepath"].tolist()
    assert labels.shape == (8, 19)
    assert labels[order.index("images/p3.png")].tolist() == _hot(3 * 37, 19)
    endo = [(f"study{i:013d}_frame {i}.jpg", " ".join(map(str, _hot(i, 4)))) for i in range(9)]
    path = convert_medfmc(_medfmc(tmp_path, "endo", endo[:7], endo[7:]), tmp_path / "out")
    frame = DatasetFolder(path).annotations
    assert frame["patient_id"][0] == "study0000000000000"[:18]
    assert verify_dataset(path).ok


def test_bad_lists_are_reported_with_file_and_line(tmp_path: Path) -> None:
    info = MEDFMC["endo"]
    assert parse_line(info, "a b c.png 1 0 0 1", "x") == ("a b c.png", [1, 0, 0, 1])
    with pytest.raises(LabelError, match="x: expected 4 values"):
        parse_line(info, "a.png 1 0 2 1", "x")
    base = _medfmc(tmp_path, "colon", [("a_0001_y.png", "1")], [("a_0001_y.png", "0")])
    with pytest.raises(LabelError, match=r"test_WithLabel.txt:1: 'a_0001_y.png' is also listed"):
        convert_medfmc(base, tmp_path / "out")
    (base / "test_WithLabel.txt").write_text("missing_0001_y.png 0\n")
    with pytest.raises(SourceTreeError, match="missing_0001_y.png"):
        convert_medfmc(base, tmp_path / "out")
    (base / "test_WithLabel.txt").unlink()
    with pytest.raises(SourceTreeError, match="annotation list missing"):
        convert_medfmc(base, tmp_path / "out")
    assert not np.any([p.name.startswith("medfmc") for p in (tmp_path / "out").glob("*")])
