"""The pictures and the report on a real dataset: bus built from ../shared/realdata/busi-256."""

from __future__ import annotations

from pathlib import Path

import pytest
from browser_check import check_site

from medimeta.builders import build_dataset
from medimeta.data import MedIMeta
from medimeta.plots import class_grid, montage, write_report

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def bus_root(realdata: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("realdata-plots")
    build_dataset("bus", realdata / "busi-256", root=root, workers=1)
    return root


def test_bus_pictures(bus_root: Path) -> None:
    test = MedIMeta(bus_root, "bus", "case category", split="test")
    img = montage(test, 4, seed=0, tile_size=64)
    assert img.size == (256, 256) and img.mode == "L"  # BUSI is stored grey
    fig = class_grid(test, 3, seed=0)
    text = "\n".join(t.get_text() for t in fig.texts)
    assert "benign\n(90 images)" in text and "normal\n(25 images)" in text


def test_bus_report_in_the_browser(bus_root: Path, tmp_path: Path) -> None:
    rep = write_report(bus_root, tmp_path / "site")
    assert rep.problems == [] and [d.status for d in rep.datasets] == ["OK"]
    assert check_site(rep.index) == []
