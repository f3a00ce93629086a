"""Tensor augmentation: exact flips, identity when inactive, seeded, crop geometry."""

from __future__ import annotations

import pytest
import torch

from medimeta.data.splits import resize_uint8
from medimeta.errors import ShapeError
from medimeta.train.augment import (
    PAPER_AUGMENT,
    AugmentConfig,
    affine_matrices,
    apply_affine,
    augment_batch,
)


def _batch(n: int = 6, c: int = 3, s: int = 16) -> torch.Tensor:
    return torch.rand(n, c, s, s, generator=torch.Generator().manual_seed(0))


def test_inactive_config_returns_input_unchanged() -> None:
    x = _batch()
    assert augment_batch(x, AugmentConfig(), torch.Generator().manual_seed(1)) is x


def test_flips_are_exact_pixel_flips() -> None:
    x = _batch()
    h = augment_batch(x, AugmentConfig(hflip=1.0), torch.Generator().manual_seed(1))
    v = augment_batch(x, AugmentConfig(vflip=1.0), torch.Generator().manual_seed(1))
    torch.testing.assert_close(h, torch.flip(x, dims=[3]), atol=1e-6, rtol=0)
    torch.testing.assert_close(v, torch.flip(x, dims=[2]), atol=1e-6, rtol=0)


def test_rotation_by_90_degrees_matches_rot90() -> None:
    x = _batch(n=2)
    theta = torch.zeros(2, 2, 3, dtype=torch.float64)
    theta[:, 0, 1], theta[:, 1, 0] = -1.0, 1.0  # 90 degrees
    out = apply_affine(x, theta)
    torch.testing.assert_close(out, torch.rot90(x, k=1, dims=(2, 3)), atol=1e-5, rtol=0)


def test_samples_without_an_operation_keep_their_pixels() -> None:
    x = _batch(n=32)
    cfg = AugmentConfig(hflip=0.5)
    theta = affine_matrices(32, cfg, torch.Generator().manual_seed(5))
    out = apply_affine(x, theta)
    flipped = theta[:, 0, 0] < 0
    assert 0 < int(flipped.sum()) < 32
    assert torch.equal(out[~flipped], x[~flipped])
    torch.testing.assert_close(out[flipped], torch.flip(x[flipped], dims=[3]), atol=1e-6, rtol=0)


def test_same_seed_same_augmentation_and_input_not_modified() -> None:
    x = _batch()
    before = x.clone()
    a = augment_batch(x, PAPER_AUGMENT, torch.Generator().manual_seed(7))
    b = augment_batch(x, PAPER_AUGMENT, torch.Generator().manual_seed(7))
    c = augment_batch(x, PAPER_AUGMENT, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(x, before)


def test_crop_matrix_covers_the_requested_area_inside_the_image() -> None:
    cfg = AugmentConfig(crop_p=1.0, crop_scale=(0.25, 0.25), crop_ratio=(1.0, 1.0))
    theta = affine_matrices(50, cfg, torch.Generator().manual_seed(0))
    assert torch.allclose(theta[:, 0, 0], torch.full((50,), 0.5, dtype=torch.float64))
    assert torch.allclose(theta[:, 1, 1], torch.full((50,), 0.5, dtype=torch.float64))
    assert float(theta[:, :, 2].abs().max()) <= 0.5 + 1e-12  # crop stays inside the image


def test_bad_settings_and_inputs_raise() -> None:
    with pytest.raises(ValueError, match="hflip"):
        AugmentConfig(hflip=1.5)
    with pytest.raises(ValueError, match="crop_scale"):
        AugmentConfig(crop_scale=(0.0, 1.0))
    with pytest.raises(ShapeError):
        augment_batch(torch.zeros(2, 3, 4, 4, dtype=torch.uint8), PAPER_AUGMENT, torch.Generator())


def test_area_resize_undoes_pixel_repetition() -> None:
    small = torch.randint(0, 256, (3, 1, 28, 28), dtype=torch.uint8)
    big = small.repeat_interleave(8, dim=2).repeat_interleave(8, dim=3)
    assert torch.equal(resize_uint8(big, 28), small)
    assert resize_uint8(big, 224) is big
