"""The model preprocessing path (:mod:`medimeta.models.preprocessing`) against transformers'
own functions, and the reader that applies it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from transformers.image_transforms import center_crop as hf_center_crop
from transformers.image_transforms import get_resize_output_image_size, normalize, rescale

from medimeta.errors import OptionError, ShapeError
from medimeta.features.reader import EpisodeReader, reader_for
from medimeta.models.preprocessing import Preprocessing, center_crop, shortest_edge_size

ODD = Preprocessing(
    resize="none",
    rescale=1 / 255,
    mean=(0.48145466, 0.4578275, 0.40821073),
    std=(0.26862954, 0.26130258, 0.27577711),
)


@pytest.mark.parametrize("rescale_factor", [1 / 255, 0.5, None])
def test_lookup_table_is_transformers_arithmetic(rescale_factor: float | None) -> None:
    prep = Preprocessing(rescale=rescale_factor, mean=ODD.mean, std=ODD.std)
    values = np.tile(np.arange(256, dtype=np.uint8), (3, 1))[:, None, :]  # (3, 1, 256) CHW
    x = rescale(values, rescale_factor) if rescale_factor is not None else values
    expected = normalize(x, ODD.mean, ODD.std, input_data_format="channels_first")
    assert np.array_equal(prep.lut(), expected[:, 0, :])
    assert prep.lut().dtype == np.float32


def test_values_expand_grey_to_rgb() -> None:
    grey = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (2, 1, 5, 7), np.uint8))
    rgb = grey.expand(-1, 3, -1, -1).contiguous()
    assert torch.equal(ODD.values(grey), ODD.values(rgb))
    assert ODD.values(grey).shape == (2, 3, 5, 7)


@pytest.mark.parametrize(("h", "w"), [(10, 10), (11, 14), (7, 5), (3, 20)])
@pytest.mark.parametrize(("ch", "cw"), [(6, 6), (5, 8), (12, 4)])
def test_center_crop_is_transformers_crop(h: int, w: int, ch: int, cw: int) -> None:
    x = np.random.default_rng(h * w).integers(0, 256, (3, h, w), dtype=np.uint8)
    expected = hf_center_crop(x, (ch, cw), input_data_format="channels_first")
    assert np.array_equal(center_crop(x, ch, cw), expected)  # padding with zeros included


def test_torchvision_crop_rounds_half_to_even() -> None:
    x = np.arange(9 * 9).reshape(1, 9, 9)
    assert center_crop(x, 2, 2)[0, 0, 0] == x[0, 3, 3]  # (9 - 2) // 2 = 3
    assert center_crop(x, 2, 2, rule="torchvision")[0, 0, 0] == x[0, 4, 4]  # round(3.5) = 4


@pytest.mark.parametrize(("h", "w", "edge"), [(224, 224, 256), (300, 200, 224), (33, 91, 17)])
def test_shortest_edge_sizes(h: int, w: int, edge: int) -> None:
    image = np.zeros((3, h, w), np.uint8)
    expected = get_resize_output_image_size(
        image, edge, default_to_square=False, input_data_format="channels_first"
    )
    assert shortest_edge_size(h, w, edge) == tuple(expected)


def test_geometry_and_descriptions() -> None:
    prep = Preprocessing(
        resize="shortest_edge", size=(256,), resample="bicubic", crops=((224, 224),),
        mean=ODD.mean, std=ODD.std, source="test",
    )  # fmt: skip
    assert prep.output_size(224, 224) == (224, 224) and prep.resized_size(224, 300) == (256, 342)
    grey = torch.zeros(2, 1, 224, 300, dtype=torch.uint8)
    assert prep.geometry(grey).shape == (2, 1, 224, 224)
    assert prep.rgb_geometry(grey).shape == (2, 3, 224, 224)
    assert json.loads(json.dumps(prep.to_dict()))["crops"] == [[224, 224]]
    mean, std = prep.unit_statistics()  # the float path gives the same input
    x = torch.arange(256, dtype=torch.float32).view(1, 1, 1, 256).expand(1, 3, 1, 256)
    m, s = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)
    assert torch.allclose((x / 255 - m) / s, torch.from_numpy(prep.lut())[None, :, None], atol=1e-5)
    half = prep.with_normalization((0.5,), (0.5,))
    assert half.mean == (0.5, 0.5, 0.5) and half.lut()[0, 255] == pytest.approx(1.0)
    with pytest.raises(ShapeError):
        prep.geometry(torch.zeros(1, 2, 8, 8, dtype=torch.uint8))
    with pytest.raises(OptionError):
        Preprocessing(resize="shortest_edge", size=(1, 2))
    with pytest.raises(OptionError):
        Preprocessing(resample="sinc")


def test_reader_applies_a_backbones_preprocessing() -> None:
    backbone = torch.nn.Identity()
    backbone.preprocessing = ODD  # type: ignore[assignment]
    backbone.pretrained_cfg = None  # type: ignore[assignment]
    reader = reader_for(backbone, image_size=None, device=torch.device("cpu"))
    assert isinstance(reader, EpisodeReader) and reader.pixels is ODD
    x = torch.from_numpy(np.random.default_rng(1).integers(0, 256, (2, 1, 6, 6), np.uint8))
    assert torch.equal(reader.prepare(x), ODD(x))
    assert reader.preprocessing()["path"] == "model preprocessing"
    imagenet = reader_for(
        backbone, image_size=None, device=torch.device("cpu"), normalize="imagenet"
    )
    assert imagenet.pixels is not None and imagenet.pixels.mean == pytest.approx(
        (0.485, 0.456, 0.406)
    )
    plain = reader_for(torch.nn.Identity(), image_size=8, device=torch.device("cpu"))
    assert plain.pixels is None and plain.preprocessing()["path"] == "resize + normalise"
