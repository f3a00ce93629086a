"""A model's own preprocessing as data, applied to uint8 batches exactly as transformers does.

:class:`Preprocessing` holds the steps of an image processor (``preprocessor_config.json``):
resize rule, size and resampling filter, centre crops, rescale factor, mean and std. Applied to
a uint8 batch (B, C, H, W) it gives the float32 pixels transformers' slow (PIL) image
processor gives for the same images converted to RGB, bit for bit:

* resize: Pillow's own ``Image.resize`` with the processor's filter, on the uint8 image (what
  the slow processor does), one image per task on a small thread pool (Pillow releases the GIL);
  skipped when the size does not change (Pillow returns a copy then);
* centre crop: transformers' rule (top = (H - h) // 2; zero padding when the image is smaller);
* rescale and normalise: a per-channel lookup table of the 256 possible values, computed with
  transformers' arithmetic (float64 multiply, float32 cast, float32 subtract and divide), so the
  batched path is one gather per channel;
* grey images (one channel) are expanded to RGB: each RGB channel reads the grey value.
"""

from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from medimeta.errors import OptionError, ShapeError
from medimeta.logs import plural

#: Pillow's filter numbers (``PIL.Image.Resampling``) by name.
RESAMPLE: dict[str, int] = {
    "nearest": 0,
    "lanczos": 1,
    "bilinear": 2,
    "bicubic": 3,
    "box": 4,
    "hamming": 5,
}
RESIZE_RULES = ("none", "exact", "shortest_edge")
CROP_RULES = ("transformers", "torchvision")

_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max(1, min(4, os.cpu_count() or 1)), "medimeta-resize")
        return _POOL


def shortest_edge_size(height: int, width: int, edge: int) -> tuple[int, int]:
    """transformers' ``get_resize_output_image_size(default_to_square=False)``: the shorter
    side becomes ``edge``, the longer ``int(edge * long / short)``."""
    short, long = (width, height) if width <= height else (height, width)
    new_long = int(edge * long / short)
    return (new_long, edge) if width <= height else (edge, new_long)


def center_crop(x: np.ndarray, height: int, width: int, rule: str = "transformers") -> np.ndarray:
    """Centre crop of (..., H, W), zero padding where the image is smaller. The offset:
    transformers' ``(H - h) // 2``, or torchvision's ``round((H - h) / 2)`` (half to even; what
    timm's and open_clip's transforms use): they differ when ``H - h`` is odd."""
    h, w = x.shape[-2:]
    if rule == "torchvision":
        top, left = round((h - height) / 2), round((w - width) / 2)
    else:
        top, left = (h - height) // 2, (w - width) // 2
    if top >= 0 and left >= 0 and top + height <= h and left + width <= w:
        return x[..., top : top + height, left : left + width]
    new_h, new_w = max(height, h), max(width, w)
    padded = np.zeros((*x.shape[:-2], new_h, new_w), dtype=x.dtype)
    top_pad, left_pad = math.ceil((new_h - h) / 2), math.ceil((new_w - w) / 2)
    padded[..., top_pad : top_pad + h, left_pad : left_pad + w] = x
    top, left = top + top_pad, left + left_pad
    return padded[
        ..., max(0, top) : min(new_h, top + height), max(0, left) : min(new_w, left + width)
    ]


@dataclass(frozen=True)
class Preprocessing:
    """The steps of a model's image processor (see the module docstring).

    ``resize``: ``"none"``, ``"exact"`` (to ``size`` = (height, width)) or ``"shortest_edge"``
    (``size`` = (edge,)). ``crops``: centre crops (height, width) applied in order after the
    resize. ``rescale``: the factor of the uint8 values (None: none). ``mean``/``std``: three
    values each (None: no normalisation). ``source`` says where the steps were read.
    """

    resize: str = "none"
    size: tuple[int, ...] = ()
    resample: str = "bilinear"
    crops: tuple[tuple[int, int], ...] = ()
    crop_rule: str = "transformers"
    rescale: float | None = 1 / 255
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    source: str = ""
    _lut: dict[str, np.ndarray] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        if self.resize not in RESIZE_RULES:
            raise OptionError(f"resize rule must be one of {RESIZE_RULES}; got {self.resize!r}")
        want = {"none": 0, "exact": 2, "shortest_edge": 1}[self.resize]
        if len(self.size) != want or any(int(s) < 1 for s in self.size):
            raise OptionError(
                f"resize {self.resize!r} takes {plural(want, 'size value')}; got {self.size}"
            )
        if self.crop_rule not in CROP_RULES:
            raise OptionError(f"crop rule must be one of {CROP_RULES}; got {self.crop_rule!r}")
        if self.resample not in RESAMPLE:
            raise OptionError(f"resample must be one of {sorted(RESAMPLE)}; got {self.resample!r}")
        for values in (self.mean, self.std):
            if values is not None and len(values) != 3:
                raise OptionError(f"mean and std take 3 values (RGB); got {values}")
        if (self.mean is None) != (self.std is None):
            raise OptionError("mean and std are given together or not at all")

    # -- geometry -------------------------------------------------------------------------
    def resized_size(self, height: int, width: int) -> tuple[int, int]:
        """(height, width) after the resize step."""
        if self.resize == "exact":
            return int(self.size[0]), int(self.size[1])
        if self.resize == "shortest_edge":
            return shortest_edge_size(height, width, int(self.size[0]))
        return height, width

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """(height, width) of the model input for a stored image of that size."""
        size = self.resized_size(height, width)
        for crop in self.crops:
            size = crop
        return size

    def _resize_one(self, image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        from PIL import Image

        chw = image.shape[0] == 3
        pil = Image.fromarray(np.ascontiguousarray(image.transpose(1, 2, 0) if chw else image[0]))
        out = np.asarray(pil.resize((size[1], size[0]), resample=RESAMPLE[self.resample]))
        return out.transpose(2, 0, 1) if chw else out[None]

    def geometry(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 (B, C, H, W), C = 1 or 3 -> uint8 (B, C, h, w): resize, then the crops."""
        if x.dtype != torch.uint8 or x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ShapeError(
                f"preprocessing takes uint8 (B, 1 or 3, H, W) images; got {x.dtype} "
                f"{tuple(x.shape)}"
            )
        arr = x.cpu().numpy()
        size = self.resized_size(*arr.shape[-2:])
        if size != tuple(arr.shape[-2:]):
            images = list(_pool().map(lambda im: self._resize_one(im, size), arr))
            arr = np.stack(images) if images else np.empty((0, arr.shape[1], *size), np.uint8)
        for crop in self.crops:
            arr = center_crop(arr, *crop, rule=self.crop_rule)
        return torch.from_numpy(np.ascontiguousarray(arr))

    def rgb_geometry(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`geometry`, grey expanded to RGB (the float path of training normalises
        each channel with the model's mean and std)."""
        out = self.geometry(x)
        return out.expand(-1, 3, -1, -1).contiguous() if out.shape[1] == 1 else out

    def unit_statistics(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Mean and std in [0, 1] units (``(x / 255 - mean) / std`` equals this model input)."""
        scale = 255.0 * (self.rescale if self.rescale is not None else 1.0)
        mean = self.mean or (0.0, 0.0, 0.0)
        std = self.std or (1.0, 1.0, 1.0)
        return tuple(m / scale for m in mean), tuple(s / scale for s in std)

    # -- values ---------------------------------------------------------------------------
    def lut(self) -> np.ndarray:
        """float32 (3, 256): the model input of each uint8 value per RGB channel, computed
        with transformers' arithmetic (rescale in float64 then float32; normalise in
        float32)."""
        if "rgb" not in self._lut:
            v = np.arange(256, dtype=np.uint8)
            if self.rescale is not None:
                x = (v.astype(np.float64) * float(self.rescale)).astype(np.float32)
            else:
                x = v.astype(np.float32)
            table = np.empty((3, 256), np.float32)
            for c in range(3):
                if self.mean is None or self.std is None:
                    table[c] = x
                else:
                    m = np.array([self.mean[c]], dtype=np.float32)
                    s = np.array([self.std[c]], dtype=np.float32)
                    table[c] = (x - m) / s
            self._lut["rgb"] = table
        return self._lut["rgb"]

    def values(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 (B, 1 or 3, h, w) -> float32 (B, 3, h, w) through :meth:`lut` (grey: each
        RGB channel reads the one grey channel)."""
        table = self.lut()
        src = x.cpu().numpy()
        out = np.empty((src.shape[0], 3, *src.shape[2:]), np.float32)
        for c in range(3):
            out[:, c] = table[c][src[:, c if src.shape[1] == 3 else 0]]
        return torch.from_numpy(out)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 (B, C, H, W) -> float32 model input (B, 3, h, w)."""
        return self.values(self.geometry(x))

    # -- descriptions ---------------------------------------------------------------------
    def with_normalization(self, mean: tuple[float, ...], std: tuple[float, ...]) -> Preprocessing:
        """The same geometry with a normalisation preset: rescale 1/255, then ``mean`` and
        ``std`` ([0, 1] units; one value is used for every channel)."""
        mean3, std3 = (tuple(mean) * 3)[:3], (tuple(std) * 3)[:3]
        source = f"{self.source}; mean/std replaced"
        return replace(self, rescale=1 / 255, mean=mean3, std=std3, source=source)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able description (what the features depend on)."""
        return {
            "resize": self.resize,
            "size": list(self.size),
            "resample": self.resample,
            "crops": [list(c) for c in self.crops],
            "crop_rule": self.crop_rule,
            "rescale": self.rescale,
            "mean": None if self.mean is None else list(self.mean),
            "std": None if self.std is None else list(self.std),
            "rgb": True,
            "source": self.source,
        }
