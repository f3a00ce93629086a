"""Sample panels, montages, overview tiles, class grids and episode grids."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medimeta.data import MedIMeta, MedIMetaMultiTask
from medimeta.episodes import EpisodeSampler
from medimeta.errors import EpisodeError, MedIMetaError
from medimeta.format.reader import DatasetFolder
from medimeta.plots import (
    class_grid,
    dataset_overview,
    episode_grid,
    figure_png,
    montage,
    plot_samples,
)
from medimeta.plots.grid import GAP, MARGIN


def _image_axes(fig):  # type: ignore[no-untyped-def]
    return [ax for ax in fig.axes if ax.images]


def _texts(fig) -> str:  # type: ignore[no-untyped-def]
    return "\n".join(t.get_text() for t in fig.texts)


def test_plot_samples_one_panel_per_position_in_grey(toy_root: Path) -> None:
    ds = MedIMeta(toy_root, "toy_gray", "case category", split="train")
    fig = plot_samples(ds, [0, 1, 2, 3, 4], columns=3, tile=2.0)
    axes = _image_axes(fig)
    assert len(axes) == 5
    width, _height = fig.get_size_inches()
    assert width == pytest.approx(2 * MARGIN + 3 * (2.0 + GAP))
    assert {ax.images[0].get_cmap().name for ax in axes} == {"gray"}
    assert axes[0].images[0].get_clim() == (0, 255)
    truth = [ds.classes[int(ds.labels[i])] for i in range(5)]
    assert all(f"label: {name}" in _texts(fig) for name in truth)


def test_plot_samples_single_position_and_predictions(toy_root: Path) -> None:
    ds = MedIMeta(toy_root, "toy_gray", "case category", split="train")
    fig = plot_samples(ds, 2, predictions=["malignant"])
    assert len(_image_axes(fig)) == 1
    truth = ds.classes[int(ds.labels[2])]
    assert f"label: {truth}\nprediction: malignant" in _texts(fig)
    fig = plot_samples(ds, [0, 1], predictions=[0, 1])  # label keys
    assert "prediction: normal" in _texts(fig) and "prediction: benign" in _texts(fig)
    with pytest.raises(MedIMetaError, match="2 predictions for 1 positions"):
        plot_samples(ds, [0], predictions=[0, 1])


def test_ordinal_predictions_follow_the_dataset_encoding(toy_root: Path) -> None:
    keys = MedIMeta(toy_root, "toy_gray", "DR level")
    index = MedIMeta(toy_root, "toy_gray", "DR level", ordinal_labels="index")
    assert "prediction: b" in _texts(plot_samples(keys, [0], predictions=[4]))
    assert "prediction: b" in _texts(plot_samples(index, [0], predictions=[2]))  # position 2


def test_multilabel_names_the_positive_labels(toy_root: Path) -> None:
    ds = MedIMeta(toy_root, "toy_rgb", "finding labels")
    row = ds.labels[0]
    expected = ", ".join(n for n, v in zip("ABCD", row.tolist(), strict=True) if v) or "none"
    fig = plot_samples(ds, [0], predictions=[[1, 0, 0, 1]])
    assert f"label: {expected}\nprediction: A, D" in _texts(fig)
    ax = _image_axes(fig)[0]
    assert ax.images[0].get_array().shape == (224, 224, 3)  # RGB drawn as RGB


def test_multitask_shows_every_task(toy_root: Path) -> None:
    mt = MedIMetaMultiTask(toy_root, "toy_gray", split="test")
    fig = plot_samples(mt, [0, 1])
    text = _texts(fig)
    for task in ("case category", "Malignancy", "finding labels", "DR level"):
        assert f"{task}: " in text
    pred = {"Malignancy": 1}
    fig = plot_samples(mt, [0], predictions=[pred], tasks=["Malignancy"])
    assert "prediction: malignant finding" in _texts(fig)


def test_montage_size_mode_and_seed(toy_root: Path) -> None:
    gray = MedIMeta(toy_root, "toy_gray", "case category")
    img = montage(gray, 3, seed=1)
    assert img.size == (3 * 224, 3 * 224) and img.mode == "L"
    assert montage(gray, length=2, seed=1).size == (448, 448)
    assert montage(gray, 3, seed=1).tobytes() == img.tobytes()
    assert montage(gray, 3, seed=2).tobytes() != img.tobytes()
    rgb = montage(MedIMetaMultiTask(toy_root, "toy_rgb"), 4, seed=0, tile_size=50)
    assert rgb.size == (200, 200) and rgb.mode == "RGB"
    with pytest.raises(MedIMetaError, match="replace=True"):
        montage(gray, 4)  # 16 images of 12
    assert montage(gray, 4, replace=True).size == (896, 896)


def test_montage_tiles_are_the_stored_images(toy_root: Path) -> None:
    ds = MedIMeta(toy_root, "toy_gray", "case category", split="test")
    arr = np.asarray(montage(ds, 2, seed=5))
    positions = np.random.default_rng(5).choice(len(ds), size=4, replace=False)
    first = ds.store.read(int(ds.split_indices[positions[0]]))
    assert np.array_equal(arr[:224, :224], first)


def test_dataset_overview_one_tile_per_dataset(toy_root: Path) -> None:
    fig = dataset_overview(toy_root, seed=0)
    assert len(_image_axes(fig)) == 2
    assert "Toy domain\ntoy_gray" in _texts(fig)
    a, b = figure_png(dataset_overview(toy_root, seed=0)), figure_png(fig)
    assert a == b
    assert figure_png(dataset_overview(toy_root, seed=3)) != a
    one = dataset_overview(toy_root, ["toy_rgb"])
    assert len(_image_axes(one)) == 1
    with pytest.raises(MedIMetaError, match="toy_rgb"):
        dataset_overview(toy_root, ["toy_rbg"])


def test_class_grid_rows_per_class(toy_root: Path) -> None:
    ds = MedIMeta(toy_root, "toy_gray", "case category")
    fig = class_grid(ds, 2, seed=0)
    assert len(_image_axes(fig)) == 3 * 2
    for name in ("normal", "benign", "malignant"):
        assert f"{name}\n(4 images)" in _texts(fig)
    assert figure_png(class_grid(ds, 2, seed=0)) == figure_png(fig)
    assert figure_png(class_grid(ds, 2, seed=1)) != figure_png(fig)
    ml = class_grid(DatasetFolder(toy_root / "toy_rgb"), 3, task="finding labels")
    assert "multi-label" in _texts(ml)
    assert len([t for t in ml.texts if "images)" in t.get_text()]) == 4


def test_episode_grid_support_and_query_rows(toy_root: Path, tmp_path: Path) -> None:
    sampler = EpisodeSampler.from_root(
        toy_root, "toy_gray:case category", "all", shots=1, queries=2, num_episodes=2, seed=0
    )
    ep = sampler.sample()[0]
    fig = episode_grid(ep)
    assert len(_image_axes(fig)) == ep.support_indices.size + ep.query_indices.size
    text = _texts(fig)
    assert "support" in text and "query" in text
    for c in ep.classes:
        assert f"{c.name}\n1 support, 2 query" in text
    unbound = ep.bind(None)
    with pytest.raises(EpisodeError, match="not bound"):
        episode_grid(unbound)
    assert len(_image_axes(episode_grid(unbound, toy_root / "toy_gray"))) == 9


def test_multilabel_episode_says_so(toy_root: Path) -> None:
    sampler = EpisodeSampler.from_root(
        toy_root, "toy_rgb:finding labels", "all", shots=1, queries=1, num_episodes=1, seed=0
    )
    ep = sampler.sample()[0]
    fig = episode_grid(ep)
    flat = " ".join(_texts(fig).split())  # the title wraps to the figure's width
    assert "multi-label: each row shows the positives of one label" in flat
    positives = int(ep.support_labels.sum() + ep.query_labels.sum())
    assert len(_image_axes(fig)) == positives


def test_dataset_methods_draw_like_the_functions(toy_root: Path) -> None:
    ds = MedIMeta(toy_root, "toy_gray", "case category", split="train")
    assert ds.montage(2, seed=1).tobytes() == montage(ds, 2, seed=1).tobytes()
    fig = ds.plot([0, 1], predictions=["normal", "benign"])
    assert len(fig.axes) == len(plot_samples(ds, [0, 1], ["normal", "benign"]).axes)
    multi = MedIMetaMultiTask(toy_root, "toy_rgb")
    assert multi.montage(2).size == montage(multi, 2).size
    assert len(multi.plot(0).axes) >= 1
