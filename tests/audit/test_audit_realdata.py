"""The audit on real images (../shared/realdata): BreastMNIST (28 px, center-cropped BUSI)
against MedIMeta's ``bus`` (BUSI stretched to 224 px), PBC built and converted as a folder,
and unrelated sources.

BreastMNIST's order is a random 7:1:2 split of BUSI with no file names, so the true pairing is
measured by proxy: the share of BreastMNIST images paired, the agreement of the malignancy
labels of each image and its best ``bus`` partner (chance agreement would be 61 %), and
mutual best matches.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from medimeta.audit import compute_descriptors, find_pairs, shared_image_sources
from medimeta.audit.duplicates import mutual_best, paired_mask
from medimeta.cli.app import app
from medimeta.format.reader import DatasetFolder

pytestmark = pytest.mark.realdata


def _cli(*args: str) -> None:
    result = CliRunner().invoke(app, [*args, "-q"])
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def breast_root(realdata: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("audit-real") / "MedIMeta"
    npz = realdata / "medmnist-v2-28" / "breastmnist.npz"
    _cli("convert", "medmnist", str(npz), "--root", str(root))
    _cli("build", "bus", "--source", str(realdata / "busi-256"), "--root", str(root))
    return root


def _desc(root: Path, ds: str):
    return compute_descriptors(DatasetFolder(root / ds))


def test_breastmnist_images_are_found_in_bus(breast_root: Path) -> None:
    bm, bus = _desc(breast_root, "breastmnist"), _desc(breast_root, "bus")
    table = find_pairs(bm, bus)
    paired = paired_mask(table, "a")
    assert paired.mean() >= 0.90
    malignant_bm = np.load(breast_root / "breastmnist" / "task_labels" / "malignancy.npy") == 0
    malignant_bus = np.load(breast_root / "bus" / "task_labels" / "malignancy.npy") == 1
    best = table.result.best_a_index
    agree = malignant_bm == malignant_bus[best]
    assert agree[paired].mean() >= 0.97
    every_pair = malignant_bm[table.ia] == malignant_bus[table.ib]
    assert every_pair.mean() >= 0.97
    assert mutual_best(table)[paired].mean() >= 0.90  # the rest: BUSI's own near-duplicates


def test_unrelated_sources_share_nothing(breast_root: Path, realdata: Path) -> None:
    root = breast_root
    if not (root / "pbc").is_dir():
        _cli(
            "build",
            "pbc",
            "--source",
            str(realdata / "pbc-subset"),
            "--root",
            str(root),
            "--partial",
        )
    table = find_pairs(_desc(root, "bus"), _desc(root, "pbc"))
    assert len(table) == 0 and table.result.best_a.max() < 0.8


@pytest.mark.slow
def test_pbc_and_its_folder_conversion_pair(breast_root: Path, realdata: Path) -> None:
    root = breast_root
    if not (root / "pbc").is_dir():
        _cli(
            "build",
            "pbc",
            "--source",
            str(realdata / "pbc-subset"),
            "--root",
            str(root),
            "--partial",
        )
    src = str(realdata / "pbc-subset")
    _cli(
        "convert", "folder", src, "--root", str(root), "--id", "pbc_folder", "--task", "cell class"
    )
    table = find_pairs(_desc(root, "pbc"), _desc(root, "pbc_folder"))
    assert paired_mask(table, "a").mean() >= 0.99 and paired_mask(table, "b").mean() >= 0.99


def test_shared_image_sources_refuses_breastmnist_and_a_plain_folder(
    breast_root: Path, realdata: Path, tmp_path: Path
) -> None:
    root = breast_root
    src = str(realdata / "busi-256")
    _cli(
        "convert",
        "folder",
        src,
        "--root",
        str(root),
        "--id",
        "busi_folder",
        "--task",
        "case category",
    )
    cands = ["breastmnist", "busi_folder"] + (["pbc"] if (root / "pbc").is_dir() else [])
    got = shared_image_sources(root, "bus", cands, cache=tmp_path / "cache")
    assert set(got) == {"breastmnist", "busi_folder"}
    assert got["busi_folder"].startswith("shares 780 of 780 images with bus")
    n = int(got["breastmnist"].split()[1].replace(",", ""))
    assert n >= 0.9 * 780 and "score ≥ 0.95" in got["breastmnist"]


def test_audit_page_pictures_decode_in_chromium(breast_root: Path, tmp_path: Path) -> None:
    """BUSI + BreastMNIST: the page shows the pairs as thumbnails that decode in a browser, and
    the report built with --audit carries them."""
    from plots.browser_check import check_site

    out = tmp_path / "audit"
    _cli("audit", "breastmnist", "bus", "--root", str(breast_root), "--out", str(out),
         "--no-labels", "--cache", str(tmp_path / "cache"))  # fmt: skip
    page = (out / "audit.html").read_text(encoding="utf-8")
    images = page.count("<img")
    assert images == page.count('<img src="data:image/jpeg;base64,') >= 20
    assert images == 2 * 24 * 3  # 24 pairs within each dataset and 24 across
    assert "24 of 1,289 pairs shown (highest score first); 1,265 left out" in page
    assert check_site(out / "audit.html") == []  # every image complete with naturalWidth > 0
    md = (out / "report.md").read_text(encoding="utf-8")
    assert len(re.findall(r"!\[[^\]]*\]\(pictures/[^)]+\.jpg\)", md)) == images
    site = tmp_path / "site"
    _cli("report", "--root", str(breast_root), "bus", "--out", str(site), "--no-verify",
         "--audit", str(out))  # fmt: skip
    assert (site / "audit.html").read_text(encoding="utf-8").count("<img") == images
    assert check_site(site / "index.html") == []
