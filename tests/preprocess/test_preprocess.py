"""Exact pixel arithmetic of the preprocessing primitives (medimeta.preprocess)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from medimeta.errors import PreprocessError
from medimeta.preprocess import (
    binarize,
    center_crop_square,
    crop_physically_square,
    crop_with_padding,
    ct_window,
    mask_bbox,
    pad_to_square,
    physically_square_box,
    resize_square,
    roi_crop,
    scale_to_uint8,
    slice_through_box,
    to_mode,
)


def _grey(width: int, height: int, start: int = 1) -> np.ndarray:
    return (np.arange(width * height, dtype=np.uint8) + start).reshape(height, width)


# ---------------------------------------------------------------- pad / crop


def test_pad_5x2_puts_two_rows_on_top_and_one_below() -> None:
    arr = _grey(5, 2)
    out = np.asarray(pad_to_square(Image.fromarray(arr)))
    assert out.shape == (5, 5)
    assert not out[[0, 1, 4]].any()
    np.testing.assert_array_equal(out[2:4], arr)


def test_pad_offset_is_round_half_to_even() -> None:
    # padding 5 -> round(2.5) = 2 before and 3 after; padding 7 -> round(3.5) = 4 before.
    out5 = pad_to_square(_grey(7, 2))
    assert out5.shape == (7, 7)
    assert not out5[:2].any() and out5[2:4].all() and not out5[4:].any()
    out7 = pad_to_square(_grey(2, 9))
    assert not out7[:, :4].any() and out7[:, 4:6].all() and not out7[:, 6:].any()


@pytest.mark.parametrize("mode", ["L", "RGB", "1", "I;16"])
def test_pad_matches_pil_imageops_pad_for_all_small_sizes(mode: str) -> None:
    rng = np.random.default_rng(0)
    for width in range(1, 9):
        for height in range(1, 9):
            base = Image.fromarray(rng.integers(1, 255, (height, width, 3), dtype=np.uint8))
            img = base.convert(mode)
            side = max(width, height)
            ours = pad_to_square(img)
            theirs = ImageOps.pad(img, (side, side), method=Image.Resampling.BICUBIC)
            assert ours.mode == img.mode
            np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))


def test_pad_numpy_equals_pil_and_supports_fill() -> None:
    rgb = np.random.default_rng(1).integers(0, 255, (3, 6, 3), dtype=np.uint8)
    np.testing.assert_array_equal(
        pad_to_square(rgb), np.asarray(pad_to_square(Image.fromarray(rgb)))
    )
    filled = pad_to_square(rgb, fill=(9, 8, 7))
    np.testing.assert_array_equal(filled[0, 0], [9, 8, 7])
    np.testing.assert_array_equal(filled[2:5], rgb)  # round(1.5) = 2 rows on top
    grey = pad_to_square(_grey(1, 3), fill=5)
    np.testing.assert_array_equal(grey[:, [0, 2]], 5)
    with pytest.raises(PreprocessError, match="fill of 2 values"):
        pad_to_square(rgb, fill=(1, 2))


def test_pad_keeps_palette() -> None:
    img = Image.fromarray(np.array([[1, 2]], dtype=np.uint8), mode=None).convert("P")
    img.putpalette([0, 0, 0, 10, 20, 30, 40, 50, 60] + [0] * 759)
    padded = pad_to_square(img)
    assert padded.mode == "P"
    np.testing.assert_array_equal(
        np.asarray(padded.convert("RGB"))[0], [[10, 20, 30], [40, 50, 60]]
    )


def test_center_crop_offsets_floor() -> None:
    arr = _grey(7, 4)
    out = center_crop_square(arr)
    np.testing.assert_array_equal(out, arr[:, 1:5])  # (7 - 4) // 2 = 1
    tall = _grey(3, 8)
    np.testing.assert_array_equal(center_crop_square(tall), tall[2:5])  # (8 - 3) // 2 = 2
    pil = center_crop_square(Image.fromarray(arr))
    np.testing.assert_array_equal(np.asarray(pil), arr[:, 1:5])
    square = Image.fromarray(_grey(4, 4))
    assert center_crop_square(square) is square


# ---------------------------------------------------------------- resize


def test_bicubic_resize_is_pil_resize() -> None:
    img = Image.fromarray(np.random.default_rng(2).integers(0, 256, (300, 300), dtype=np.uint8))
    result = resize_square(img)
    expected = img.resize((224, 224), Image.Resampling.BICUBIC)
    np.testing.assert_array_equal(np.asarray(result.image), np.asarray(expected))
    assert result.upscaled is False and result.original_size == (300, 300)
    arr_result = resize_square(np.asarray(img))
    np.testing.assert_array_equal(arr_result.image, np.asarray(expected))


def test_thumbnail_reproduces_pil_thumbnail_and_differs_from_resize_for_large_sources() -> None:
    rng = np.random.default_rng(3)
    img = Image.fromarray(rng.integers(0, 256, (1024, 1024), dtype=np.uint8))
    expected = img.copy()
    expected.thumbnail((224, 224), Image.Resampling.BICUBIC)
    result = resize_square(img, method="thumbnail")
    assert result.image.size == (224, 224)
    np.testing.assert_array_equal(np.asarray(result.image), np.asarray(expected))
    plain = np.asarray(resize_square(img).image)
    assert not np.array_equal(plain, np.asarray(result.image))  # reducing_gap pre-reduction
    assert img.size == (1024, 1024)  # input untouched


def test_upscaling_refused_unless_allowed_and_then_recorded() -> None:
    small = Image.fromarray(_grey(100, 100))
    with pytest.raises(PreprocessError, match="allow_upscale=True"):
        resize_square(small)
    result = resize_square(small, allow_upscale=True)
    assert result.upscaled is True and result.image.size == (224, 224)
    np.testing.assert_array_equal(
        np.asarray(result.image), np.asarray(small.resize((224, 224), Image.Resampling.BICUBIC))
    )
    thumb = resize_square(small, allow_upscale=True, method="thumbnail")
    assert thumb.upscaled and thumb.image.size == (224, 224)


def test_non_square_resize_stretches_and_thumbnail_needs_square() -> None:
    img = Image.fromarray(_grey(250, 100))
    result = resize_square(img, allow_upscale=True)
    assert (
        result.image.size == (224, 224) and result.upscaled and result.original_size == (250, 100)
    )
    with pytest.raises(PreprocessError, match="square input"):
        resize_square(Image.fromarray(_grey(250, 240)), method="thumbnail")


def test_nearest_resize_keeps_masks_binary() -> None:
    rng = np.random.default_rng(4)
    mask = (rng.random((173, 173)) > 0.7).astype(np.uint8) * 255
    out = resize_square(Image.fromarray(mask), is_mask=True, allow_upscale=True)
    assert set(np.unique(np.asarray(out.image)).tolist()) == {0, 255}
    boolean = resize_square(mask > 0, is_mask=True, allow_upscale=True).image
    assert boolean.dtype == np.bool_ and boolean.shape == (224, 224)
    big = rng.random((500, 500)) > 0.5
    down = resize_square(big, is_mask=True, method="thumbnail").image
    assert down.dtype == np.bool_ and down.shape == (224, 224)


def test_resize_rejects_unsupported_arrays() -> None:
    with pytest.raises(PreprocessError, match="dtype uint16"):
        resize_square(np.zeros((300, 300), dtype=np.uint16))


# ---------------------------------------------------------------- modes and intensities


def test_rgba_to_rgb_drops_alpha_or_composites_on_black() -> None:
    px = np.array([[[200, 100, 50, 0], [200, 100, 50, 128], [200, 100, 50, 255]]], dtype=np.uint8)
    img = Image.fromarray(px)
    dropped = np.asarray(to_mode(img, "RGB"))
    np.testing.assert_array_equal(dropped, px[..., :3])
    black = np.asarray(to_mode(img, "RGB", alpha="black")).astype(int)
    np.testing.assert_array_equal(black[0, 0], [0, 0, 0])
    np.testing.assert_array_equal(black[0, 2], [200, 100, 50])
    assert np.abs(black[0, 1] - np.array([200, 100, 50]) * 128 / 255).max() <= 1


def test_rgb_to_l_is_itu_601_luma() -> None:
    rng = np.random.default_rng(5)
    rgb = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    grey = np.asarray(to_mode(Image.fromarray(rgb), "L")).astype(float)
    exact = rgb @ np.array([0.299, 0.587, 0.114])
    assert np.abs(grey - exact).max() <= 0.5 + 1e-9
    back = np.asarray(to_mode(Image.fromarray(grey.astype(np.uint8)), "RGB"))
    np.testing.assert_array_equal(back[..., 0], back[..., 2])


def test_palette_images_expand_through_the_palette() -> None:
    img = Image.fromarray(np.array([[0, 1], [2, 1]], dtype=np.uint8)).convert("P")
    palette = [10, 20, 30, 200, 0, 0, 0, 0, 255]
    img.putpalette(palette + [0] * (768 - len(palette)))
    rgb = np.asarray(to_mode(img, "RGB"))
    np.testing.assert_array_equal(rgb[0], [[10, 20, 30], [200, 0, 0]])
    np.testing.assert_array_equal(rgb[1, 0], [0, 0, 255])
    img.info["transparency"] = 1
    np.testing.assert_array_equal(np.asarray(to_mode(img, "RGB"))[0, 1], [200, 0, 0])
    grey = np.asarray(to_mode(img, "L"))
    assert grey[0, 1] == 60  # 0.299 * 200 = 59.8


def test_16_bit_to_8_bit_scales_by_dtype_max() -> None:
    values = np.array([[0, 65535, 32768, 257, 128, 32767]], dtype=np.uint16)
    expected = [0, 255, 128, 1, 0, 127]  # v * 255 / 65535, round half up
    img = Image.fromarray(values)
    assert img.mode == "I;16"
    np.testing.assert_array_equal(np.asarray(to_mode(img, "L"))[0], expected)
    np.testing.assert_array_equal(scale_to_uint8(values)[0], expected)
    np.testing.assert_array_equal(
        scale_to_uint8(values, rounding="floor")[0], [0, 255, 127, 1, 0, 127]
    )
    as_i = Image.fromarray(values.astype(np.int32))
    assert as_i.mode == "I"
    np.testing.assert_array_equal(np.asarray(to_mode(as_i, "RGB"))[0, :, 1], expected)
    with pytest.raises(PreprocessError, match="high_bit='minmax'"):
        to_mode(Image.fromarray(np.array([[70000]], dtype=np.int32)), "L")


def test_scale_rules_minmax_range_and_errors() -> None:
    arr = np.array([[10.0, 20.0, 30.0, np.nan]])
    np.testing.assert_array_equal(scale_to_uint8(arr, "minmax")[0], [0, 128, 255, 0])
    np.testing.assert_array_equal(
        scale_to_uint8(arr, "range", value_range=(0.0, 40.0))[0], [64, 128, 191, 0]
    )
    np.testing.assert_array_equal(scale_to_uint8(np.full((2, 2), 7), "minmax"), 0)
    with pytest.raises(PreprocessError, match="integer array"):
        scale_to_uint8(arr)
    with pytest.raises(PreprocessError, match="value_range"):
        scale_to_uint8(arr, "range")
    with pytest.raises(PreprocessError, match="high_bit='minmax'"):
        to_mode(Image.fromarray(np.ones((2, 2), dtype=np.float32)), "L")
    floats = to_mode(Image.fromarray(np.array([[0, 2]], dtype=np.float32)), "L", high_bit="minmax")
    np.testing.assert_array_equal(np.asarray(floats), [[0, 255]])


def test_ct_window_abdominal_defaults() -> None:
    hu = np.array([-1000, -150, -149, 50, 249, 250, 3000], dtype=np.int16)
    # (hu + 150) * 255 / 400, clipped, round half up: -149 -> 0.6375 -> 1, 50 -> 127.5 -> 128
    np.testing.assert_array_equal(ct_window(hu), [0, 0, 1, 128, 254, 255, 255])
    np.testing.assert_array_equal(
        ct_window(hu, width=2000, level=0), [0, 108, 109, 134, 159, 159, 255]
    )
    assert ct_window(hu).dtype == np.uint8
    with pytest.raises(PreprocessError, match="positive"):
        ct_window(hu, width=0)


def test_binarize_threshold_is_strict() -> None:
    grey = np.array([[0, 85, 86, 170, 171]], dtype=np.uint8)
    np.testing.assert_array_equal(binarize(grey, 85), [[False, False, True, True, True]])
    np.testing.assert_array_equal(binarize(Image.fromarray(grey), 170)[0], [0, 0, 0, 0, 1])


# ---------------------------------------------------------------- crops


def test_crop_with_padding_fills_outside_the_image() -> None:
    arr = _grey(4, 3)
    crop = crop_with_padding(arr, ((-1, 2), (2, 6)))
    expected = np.zeros((3, 4), dtype=np.uint8)
    expected[1:3, 0:2] = arr[0:2, 2:4]
    np.testing.assert_array_equal(crop.array, expected)
    assert crop.padded and crop.box == ((-1, 2), (2, 6))
    inside = crop_with_padding(arr, ((0, 2), (1, 3)))
    assert not inside.padded
    np.testing.assert_array_equal(inside.array, arr[0:2, 1:3])
    outside = crop_with_padding(arr, ((10, 12), (0, 2)), fill=7)
    np.testing.assert_array_equal(outside.array, 7)


def test_physically_square_box_known_case() -> None:
    # rows 10 voxels x 2 mm = 20 mm, cols 20 voxels x 0.5 mm = 10 mm -> cols grow to 40 voxels.
    assert physically_square_box(((40, 50), (30, 50)), (2.0, 0.5)) == ((40, 50), (20, 60))
    # isotropic spacing: a plain square around the centre, odd voxel on the far side.
    assert physically_square_box(((0, 4), (0, 7)), (1.0, 1.0)) == ((-1, 6), (0, 7))


def test_physically_square_crop_is_square_in_mm_within_one_voxel() -> None:
    rng = np.random.default_rng(6)
    image = rng.integers(-1000, 1000, (120, 90)).astype(np.int16)
    for _ in range(200):
        spacing = (float(rng.uniform(0.3, 5.0)), float(rng.uniform(0.3, 5.0)))
        r0, c0 = int(rng.integers(-5, 110)), int(rng.integers(-5, 80))
        box = ((r0, r0 + int(rng.integers(1, 40))), (c0, c0 + int(rng.integers(1, 40))))
        crop = crop_physically_square(image, box, spacing)
        (gr0, gr1), (gc0, gc1) = crop.box
        assert crop.array.shape == (gr1 - gr0, gc1 - gc0)
        mm_rows, mm_cols = crop.array.shape[0] * spacing[0], crop.array.shape[1] * spacing[1]
        assert abs(mm_rows - mm_cols) <= max(spacing) / 2 + 1e-9
        assert gr0 <= box[0][0] and gr1 >= box[0][1] and gc0 <= box[1][0] and gc1 >= box[1][1]
        rows = np.arange(gr0, gr1)
        cols = np.arange(gc0, gc1)
        valid_r = (rows >= 0) & (rows < 120)
        valid_c = (cols >= 0) & (cols < 90)
        np.testing.assert_array_equal(
            crop.array[np.ix_(valid_r, valid_c)], image[np.ix_(rows[valid_r], cols[valid_c])]
        )
        assert not crop.array[~valid_r].any() and not crop.array[:, ~valid_c].any()


def test_roi_crop_grows_to_224_squares_and_pads_at_borders() -> None:
    rng = np.random.default_rng(7)
    image = rng.integers(1, 65535, (300, 300)).astype(np.uint16)
    mask = np.zeros_like(image, dtype=np.uint8)
    mask[0:10, 280:300] = 255  # a 10 x 20 lesion in the top-right corner
    crop = roi_crop(image, mask)
    assert crop.array.shape == (224, 224) and crop.padded
    assert crop.box == ((-107, 117), (178, 402))  # grown around the centre, odd px at far side
    np.testing.assert_array_equal(crop.array[107:, :122], image[0:117, 178:300])
    assert not crop.array[:107].any() and not crop.array[:, 122:].any()
    assert roi_crop(image, ((0, 10), (280, 300))).box == crop.box


def test_roi_crop_keeps_large_rois_and_makes_them_square() -> None:
    image = _grey(300, 300)
    crop = roi_crop(image, ((20, 270), (100, 200)))
    assert crop.array.shape == (250, 250) and crop.box == ((20, 270), (25, 275))
    assert not crop.padded
    with pytest.raises(PreprocessError, match="no non-zero pixel"):
        roi_crop(image, np.zeros((300, 300), dtype=bool))
    with pytest.raises(PreprocessError, match="differs from the image shape"):
        roi_crop(image, np.ones((10, 10), dtype=bool))


def test_mask_bbox_is_tight_and_half_open() -> None:
    mask = np.zeros((6, 8), dtype=bool)
    mask[2, 3] = mask[4, 6] = True
    assert mask_bbox(mask) == ((2, 5), (3, 7))


def test_slice_through_box_uses_centre_voxel_and_remaining_spacing() -> None:
    volume = np.arange(4 * 5 * 6).reshape(4, 5, 6)
    box = ((0, 4), (1, 4), (2, 6))
    axial = slice_through_box(volume, box, 2, spacing=(0.7, 0.8, 2.5))
    assert axial.index == 3  # (2 + 6 - 1) // 2, i.e. (lo + hi) // 2 for inclusive (2, 5)
    np.testing.assert_array_equal(axial.array, volume[:, :, 3])
    assert axial.box == ((0, 4), (1, 4)) and axial.spacing == (0.7, 0.8)
    sagittal = slice_through_box(volume, box, 0)
    assert sagittal.index == 1 and sagittal.spacing is None
    np.testing.assert_array_equal(sagittal.array, volume[1])
    with pytest.raises(PreprocessError, match="outside the volume"):
        slice_through_box(volume, ((10, 12), (0, 1), (0, 1)), 0)
    with pytest.raises(PreprocessError, match="empty"):
        slice_through_box(volume, ((3, 3), (0, 1), (0, 1)), 0)


# ---------------------------------------------------------------- real images


def _realdata() -> Path:
    default = Path(__file__).resolve().parents[2].parent / "shared" / "realdata"
    root = Path(os.environ.get("MEDIMETA_REALDATA", default))
    if not root.is_dir():
        pytest.skip(f"real data not found at {root} (set MEDIMETA_REALDATA)")
    return root


@pytest.mark.realdata
def test_busi_chain_matches_the_original_pipeline_calls() -> None:
    folder = _realdata() / "busi-256" / "malignant"
    files = sorted(folder.glob("*.png"))[:5]
    if not files:
        pytest.skip(f"no BUSI images in {folder}")
    for path in files:
        with Image.open(path) as src:
            src.load()
            ours = resize_square(pad_to_square(to_mode(src, "L")), allow_upscale=True)
            grey = src.convert("L")
            side = max(grey.size)
            original = ImageOps.pad(grey, (side, side), method=Image.Resampling.BICUBIC).resize(
                (224, 224), Image.Resampling.BICUBIC
            )
        assert ours.original_size == (side, side)
        np.testing.assert_array_equal(np.asarray(ours.image), np.asarray(original))
