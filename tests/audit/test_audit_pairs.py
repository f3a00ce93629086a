"""Exact and near duplicates within and across generated datasets, robust to resolution,
padding, cropping, JPEG and grey vs RGB; unrelated images stay unpaired."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from audit_helpers import (
    area_down_up,
    center_crop,
    jpeg,
    pad_square,
    smooth_images,
    stretch,
    write_dataset,
)

from medimeta.audit import compute_descriptors, find_pairs
from medimeta.audit.descriptors import area_matrix, content_boxes, to_grey
from medimeta.audit.duplicates import paired_mask
from medimeta.audit.pairing import winning_combos
from medimeta.format.reader import DatasetFolder


def _desc(path: Path):
    return compute_descriptors(DatasetFolder(path))


def _pairs(table) -> dict[tuple[int, int], tuple[float, bool]]:
    return {
        (int(i), int(j)): (float(s), bool(e))
        for i, j, s, e in zip(table.ia, table.ib, table.score, table.exact, strict=True)
    }


def test_area_matrix_rows_sum_to_one_and_keep_constants() -> None:
    m = area_matrix(np.array([3.5]), np.array([200.25]), 224, 16)[0]
    assert np.allclose(m.sum(axis=1), 1.0)
    assert np.allclose(m @ np.full(224, 7.0), 7.0)
    whole = area_matrix(np.array([0.0]), np.array([224.0]), 224, 16)[0]
    x = np.arange(224, dtype=np.float32)
    assert np.allclose(whole @ x, x.reshape(16, 14).mean(axis=1))


def test_content_box_strips_centred_padding_but_not_one_sided_dark() -> None:
    content = smooth_images(1, seed=3, shape=(160, 224))[0]
    padded = pad_square(content)
    box = content_boxes(to_grey(padded[None]))[0]
    assert 28 <= box[0] <= 36 and 188 <= box[1] <= 196 and box[2] == 0 and box[3] == 224
    dark = smooth_images(1, seed=4)[0].copy()
    dark[180:] = 5  # a dark region at the bottom only: content, kept
    assert tuple(content_boxes(to_grey(dark[None]))[0]) == (0, 224, 0, 224)


def test_exact_duplicates_within_a_dataset(root: Path) -> None:
    imgs = smooth_images(12, seed=1)
    imgs[7] = imgs[2]
    imgs[11] = imgs[2]
    table = find_pairs(_desc(write_dataset(root, "dups", imgs)))
    pairs = _pairs(table)
    assert set(pairs) == {(2, 7), (2, 11), (7, 11)}
    assert all(exact and score == 1.0 for score, exact in pairs.values())
    assert table.exact_groups == 1 and table.largest_group == 3


def test_blank_images_are_paired_exactly_only(root: Path) -> None:
    imgs = smooth_images(6, seed=2)
    imgs[1] = 0
    imgs[4] = 0
    imgs[5] = 1  # flat too, but other pixels: no pair
    table = find_pairs(_desc(write_dataset(root, "blank", imgs)))
    assert _pairs(table) == {(1, 4): (1.0, True)}


def test_exact_duplicates_across_datasets_and_grey_vs_rgb(root: Path) -> None:
    grey = smooth_images(10, seed=5)
    rgb = np.repeat(smooth_images(8, seed=6)[..., None], 3, axis=3)
    rgb[3] = np.repeat(grey[6][..., None], 3, axis=2)  # the grey image stored as RGB
    tint = grey[2].astype(np.float64)
    colour = np.stack([tint * 0.9 + 20, tint, tint * 0.8 + 10], axis=2)  # a tinted RGB copy
    rgb[5] = np.clip(colour, 0, 255).astype(np.uint8)
    a = _desc(write_dataset(root, "grey", grey))
    b = _desc(write_dataset(root, "rgb", rgb))
    pairs = _pairs(find_pairs(a, b))
    assert pairs[6, 3] == (1.0, True)
    assert (2, 5) in pairs and not pairs[2, 5][1] and pairs[2, 5][0] > 0.99
    assert set(pairs) == {(6, 3), (2, 5)}


def test_low_resolution_jpeg_and_padded_copies_are_paired(root: Path) -> None:
    base = smooth_images(20, seed=7)
    copies = smooth_images(20, seed=8)  # unrelated fillers
    copies[0] = area_down_up(base[4])  # 224 px vs its 28 px area-downsampled copy
    copies[1] = jpeg(base[9], quality=60)
    copies[2] = area_down_up(jpeg(base[13], quality=75))
    a = _desc(write_dataset(root, "orig", base))
    b = _desc(write_dataset(root, "copies", copies))
    table = find_pairs(a, b)
    pairs = _pairs(table)
    assert set(pairs) == {(4, 0), (9, 1), (13, 2)}
    assert all(not exact and score >= 0.95 for score, exact in pairs.values())
    assert paired_mask(table, "a").sum() == 3 and paired_mask(table, "b").sum() == 3


@pytest.mark.parametrize("other", [pad_square, center_crop])
def test_non_square_sources_padded_stretched_or_cropped(root: Path, other) -> None:
    sources = smooth_images(16, seed=9, shape=(160, 224))  # wider than tall
    stretched = np.stack([stretch(s) for s in sources])
    transformed = np.stack([other(s) for s in sources])[::-1].copy()  # reversed order
    a = _desc(write_dataset(root, "stretched", stretched))
    b = _desc(write_dataset(root, "other", transformed))
    table = find_pairs(a, b)
    best = dict(zip(range(16), table.result.best_a_index.tolist(), strict=True))
    assert best == {i: 15 - i for i in range(16)}
    assert paired_mask(table, "a").all() and paired_mask(table, "b").all()
    won = winning_combos(a, b, table.result.combos, table.ia, table.ib)
    if other is center_crop:  # the crop is ~71 % of the stretched image's width
        assert all(w in ("crop-x0.7/full", "crop-x0.75/full") for w in won), won
    else:  # padding is stripped: the content box is the stretched image
        assert set(won) == {"full/full"}


def test_unrelated_images_are_not_paired(root: Path) -> None:
    a = _desc(write_dataset(root, "one", smooth_images(40, seed=10)))
    b = _desc(write_dataset(root, "two", smooth_images(40, seed=11)))
    assert len(find_pairs(a)) == 0 and len(find_pairs(b)) == 0
    table = find_pairs(a, b)
    assert len(table) == 0
    assert table.result.best_a.max() < 0.9
    assert [c for c in table.result.choice["first_scan"]] == ["full/full"]
    assert table.result.choice["second_pass"] == []


def test_blocked_scan_equals_one_block(root: Path) -> None:
    imgs = smooth_images(30, seed=12)
    for k in range(0, 30, 3):
        imgs[k + 1] = jpeg(imgs[k], quality=70)
    a = _desc(write_dataset(root, "blocks", imgs))
    one = find_pairs(a, block=4096)
    small = find_pairs(a, block=7)
    p1, p2 = _pairs(one), _pairs(small)
    assert set(p1) == set(p2)
    assert all(abs(p1[k][0] - p2[k][0]) < 1e-5 for k in p1)
    assert set(_pairs(one)) == {(k, k + 1) for k in range(0, 30, 3)}
    assert np.array_equal(one.result.best_a_index, small.result.best_a_index)


def test_variants_all_and_none(root: Path) -> None:
    sources = smooth_images(6, seed=13, shape=(150, 224))
    a = _desc(write_dataset(root, "s", np.stack([stretch(s) for s in sources])))
    b = _desc(write_dataset(root, "c", np.stack([center_crop(s) for s in sources])))
    assert paired_mask(find_pairs(a, b, variants="all"), "a").all()
    assert not paired_mask(find_pairs(a, b, variants="none"), "a").all()
