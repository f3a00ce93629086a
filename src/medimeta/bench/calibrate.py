"""Calibration: a few timed passes of a backbone on real batches of a target.

Parts, each timed after one warm-up pass (the fastest of 3 to 5 timed passes: on a shared
machine the fastest is the least disturbed one, so an estimate is the time on a free machine):

* ``forward``: read + prepare + eval-mode forward of a batch of 16 images (the embedding
  cache's chunk), per image; also the time to build the backbone with its weights;
* ``train``: one full-batch Adam step (train mode, fresh head) at 8 and 24 images; a line
  ``a + b * n`` through the two;
* ``probe``: one Adam step of a linear head on 15 random feature vectors;
* ``maml``: one second-order meta-step (one inner SGD step on 10 support images through
  ``torch.func``, backward of the query loss of 20 images).

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
from torch.func import functional_call

from medimeta.bench.cache import CHUNK
from medimeta.format.reader import DatasetFolder
from medimeta.models import make_head, make_loss
from medimeta.models.backbone import Backbone
from medimeta.train.fewshot.maml import EpisodeNet, adapt
from medimeta.train.fewshot.methods import one_thread
from medimeta.train.fewshot.tensors import EpisodeReader
from medimeta.train.inputs import channels_last_default
from medimeta.train.model import Classifier, build_backbone
from medimeta.train.records import Log, read_json, write_json

FILE = "calibration.json"
METHOD_PARTS = {
    "linear-probe": ("forward", "probe"),
    "protonet": ("forward",),
    "knn": ("forward",),
    "im-pt": ("forward", "train"),
    "mm-pt": ("forward", "train"),
    "mm-maml": ("forward", "train", "maml"),
    "meta-baseline": ("forward", "train"),
    "supervised": ("forward", "train"),
}
MULTICLASS = "MULTICLASS_CLASSIFICATION"


def _timed(fn: Callable[[], Any], repeats: int = 3) -> float:
    """The fastest of ``repeats`` timed calls after a warm-up call (on a shared machine the
    fastest is the least disturbed one)."""
    fn()  # warm-up: allocations, oneDNN kernels
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(min(times))


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
            result = MEASURES[part](model, reader, folder)
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
            )
            self._setups[ident] = (backbone, reader, build_s)
        return self._setups[ident]


def _batch(folder: Path, reader: EpisodeReader, n: int) -> torch.Tensor:
    total = DatasetFolder(folder, check=False).num_samples
    rows = np.arange(min(n, total), dtype=np.int64)
    return reader.prepare(reader.loader.images(folder, rows))


def measure_forward(backbone: Backbone, reader: EpisodeReader, folder: Path) -> dict[str, Any]:
    total = DatasetFolder(folder, check=False).num_samples
    rows = np.arange(min(CHUNK, total), dtype=np.int64)

    @torch.no_grad()
    def once() -> None:
        backbone(reader.prepare(reader.loader.images(folder, rows)))

    backbone.eval()
    seconds = _timed(once, 5)
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
        x = _batch(folder, reader, n)
        if x.shape[0] in points:
            continue
        y = torch.arange(x.shape[0], device=reader.device) % 3

        def step(x: torch.Tensor = x, y: torch.Tensor = y) -> None:
            loss = loss_fn(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        points[int(x.shape[0])] = _timed(step)
    sizes = sorted(points)
    if len(sizes) == 2:
        b = (points[sizes[1]] - points[sizes[0]]) / (sizes[1] - sizes[0])
    else:
        b = points[sizes[0]] / sizes[0]
    b = max(b, 0.0)
    a = max(points[sizes[0]] - b * sizes[0], 0.0)
    return {"a": a, "b": b, "points": {str(k): v for k, v in points.items()}}


def measure_probe(backbone: Backbone, reader: EpisodeReader, folder: Path) -> dict[str, Any]:
    gen = torch.Generator().manual_seed(0)
    feats = torch.randn(15, backbone.num_features, generator=gen).to(reader.device)
    y = torch.arange(15, device=reader.device) % 3
    head = make_head(MULTICLASS, 3, backbone.num_features, "zero").to(reader.device)
    loss_fn = make_loss(MULTICLASS)
    optimizer = torch.optim.Adam(head.parameters(), lr=1e-2)

    def steps() -> None:
        with one_thread():  # as the probe runs (medimeta.train.fewshot.methods)
            _steps()

    def _steps() -> None:
        for _ in range(20):
            loss = loss_fn(head(feats), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    return {"s_per_step": _timed(steps, 5) / 20}


def measure_maml(backbone: Backbone, reader: EpisodeReader, folder: Path) -> dict[str, Any]:
    x = _batch(folder, reader, 30)
    ns = max(1, min(10, x.shape[0] // 3))
    xs, xq = x[:ns], x[ns:]
    ys = torch.arange(xs.shape[0], device=reader.device) % 2
    yq = torch.arange(xq.shape[0], device=reader.device) % 2
    head = make_head(MULTICLASS, 2, backbone.num_features, "zero").to(reader.device)
    net = EpisodeNet(copy.deepcopy(backbone), head)
    loss_fn = make_loss(MULTICLASS)
    net.train()

    def meta_step() -> None:
        params: dict[str, torch.Tensor] = dict(net.named_parameters())
        buffers = {k: v.detach().clone() for k, v in net.named_buffers()}
        adapted = adapt(net, params, buffers, xs, ys, loss_fn, steps=1, lr=0.1, order="second")
        loss_fn(functional_call(net, (adapted, buffers), (xq,)), yq).backward()
        net.zero_grad(set_to_none=True)

    return {"s_per_meta_step": _timed(meta_step, 2), "support": ns, "query": int(xq.shape[0])}


MEASURES: dict[str, Callable[[Backbone, EpisodeReader, Path], dict[str, Any]]] = {
    "forward": measure_forward,
    "train": measure_train,
    "probe": measure_probe,
    "maml": measure_maml,
}
