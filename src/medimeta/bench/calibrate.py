"""Calibration: a few timed passes of a backbone on real batches of a target.

Parts, each timed after one warm-up pass (the fastest of 3 to 5 timed passes: on a shared
machine the fastest is the least disturbed one, so an estimate is the time on a free machine):

* ``forward``: read + prepare + eval-mode forward of a batch of 16 images (the embedding
  cache's chunk), per image; also the time to build the backbone with its weights;
* ``train``: one full-batch Adam step (train mode, fresh head) at 8 and 24 images; a line
  ``a + b * n`` through the two;
* parts a method declares itself (its ``measures``; e.g. linear-probe's ``probe``, one Adam
  step of a linear head, and mm-maml's ``maml``, one second-order meta-step).

Which parts a cell needs is its method's ``calibration`` (supervised cells: forward, train).

Results are cached in ``OUT/calibration.json`` under a key naming the part, backbone, weights,
image size, channels, device and thread count, so a second plan does not time again.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medimeta.bench.settings import SUPERVISED
from medimeta.data.device import channels_last_default
from medimeta.features.cache import CHUNK
from medimeta.features.reader import EpisodeReader
from medimeta.format.reader import DatasetFolder
from medimeta.logs import Log
from medimeta.models import make_head, make_loss
from medimeta.models.backbone import Backbone
from medimeta.models.build import build_backbone
from medimeta.runs.files import read_json, write_json
from medimeta.train.fewshot.registry import all_methods, get_method, timed
from medimeta.train.model import Classifier

FILE = "calibration.json"
SUPERVISED_PARTS = ("forward", "train")
MULTICLASS = "MULTICLASS_CLASSIFICATION"


def parts_of(method: str) -> tuple[str, ...]:
    """The calibration parts a benchmark method's cost model reads."""
    return SUPERVISED_PARTS if method == SUPERVISED else get_method(method).calibration


class Calibrator:
    """Measures (or reads from ``OUT/calibration.json``) the parts the methods need."""

    def __init__(self, out: Path, device: torch.device, log: Log | None = None) -> None:
        self.path = out / FILE
        self.device = device
        self.log = log or (lambda _m: None)
        try:
            self.data: dict[str, Any] = dict(read_json(self.path))
        except (OSError, ValueError):
            self.data = {}
        self._setups: dict[tuple[Any, ...], tuple[Backbone, EpisodeReader, float]] = {}

    def key(self, part: str, backbone: str, weights: str | None, size: int, channels: int) -> str:
        tag = (weights or "random")[:12]
        return (
            f"{part}|{backbone}|{tag}|{size}px|{channels}ch|{self.device.type}|"
            f"threads={torch.get_num_threads()}"
        )

    def get(
        self,
        part: str,
        backbone: str,
        pretrained: bool | str,
        weights: str | None,
        folder: Path,
        size: int,
        normalizer: Any,
    ) -> dict[str, Any]:
        """The measurement of ``part`` (measured now if not cached)."""
        channels = DatasetFolder(folder, check=False).spec.num_channels
        key = self.key(part, backbone, weights, size, channels)
        if key not in self.data:
            self.log(f"calibrating {part} of {backbone} at {size} px on {folder.name} ...")
            model, reader, build_s = self.setup(backbone, pretrained, size, normalizer)
            t0 = time.perf_counter()
            result = measure(part)(model, reader, folder)
            result.update(build_s=build_s, calibration_s=time.perf_counter() - t0)
            result["on"] = folder.name
            self.data[key] = result
            write_json(self.path, self.data)
        return dict(self.data[key])

    def setup(
        self, name: str, pretrained: bool | str, size: int, normalizer: Any
    ) -> tuple[Backbone, EpisodeReader, float]:
        """The backbone (built once), a reader for it and the build time in seconds."""
        ident = (name, str(pretrained), size, tuple(normalizer.mean), tuple(normalizer.std))
        if ident not in self._setups:
            t0 = time.perf_counter()
            backbone = build_backbone(name, pretrained=pretrained).to(self.device)
            build_s = time.perf_counter() - t0
            channels_last = channels_last_default(None, self.device, size)
            if channels_last:
                backbone = backbone.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
            reader = EpisodeReader(
                image_size=size,
                normalizer=normalizer,
                device=self.device,
                channels_last=channels_last,
                preprocessing=backbone.preprocessing,
            )
            self._setups[ident] = (backbone, reader, build_s)
        return self._setups[ident]


def measure_forward(backbone: Backbone, reader: EpisodeReader, folder: Path) -> dict[str, Any]:
    total = DatasetFolder(folder, check=False).num_samples
    rows = np.arange(min(CHUNK, total), dtype=np.int64)

    @torch.no_grad()
    def once() -> None:
        backbone(reader.prepare(reader.loader.images(folder, rows)))

    backbone.eval()
    seconds = timed(once, 5)
    return {"s_per_image": seconds / rows.size, "batch": int(rows.size)}


def measure_train(backbone: Backbone, reader: EpisodeReader, folder: Path) -> dict[str, Any]:
    model = Classifier(
        copy.deepcopy(backbone),
        make_head(MULTICLASS, 3, backbone.num_features, "zero").to(reader.device),
        MULTICLASS,
    )
    loss_fn = make_loss(MULTICLASS)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    model.train()
    points: dict[int, float] = {}
    for n in (8, 24):
        x = reader.first_rows(folder, n)
        if x.shape[0] in points:
            continue
        y = torch.arange(x.shape[0], device=reader.device) % 3

        def step(x: torch.Tensor = x, y: torch.Tensor = y) -> None:
            loss = loss_fn(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        points[int(x.shape[0])] = timed(step)
    sizes = sorted(points)
    if len(sizes) == 2:
        b = (points[sizes[1]] - points[sizes[0]]) / (sizes[1] - sizes[0])
    else:
        b = points[sizes[0]] / sizes[0]
    b = max(b, 0.0)
    a = max(points[sizes[0]] - b * sizes[0], 0.0)
    return {"a": a, "b": b, "points": {str(k): v for k, v in points.items()}}


MEASURES: dict[str, Callable[[Backbone, EpisodeReader, Path], dict[str, Any]]] = {
    "forward": measure_forward,
    "train": measure_train,
}


def measure(part: str) -> Callable[[Backbone, EpisodeReader, Path], dict[str, Any]]:
    """The timing function of ``part``: a shared one, or the method that declares it."""
    if part in MEASURES:
        return MEASURES[part]
    for method in all_methods():
        if part in method.measures:
            return method.measures[part]
    raise KeyError(f"no method declares the calibration part {part!r}")
