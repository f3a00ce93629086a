"""Calibration: a few timed passes of a backbone on random images of the target size.

Parts, each timed after one warm-up pass (the fastest of up to 3 to 5 timed passes, which stop
after 2 s of repeats: on a shared machine the fastest is the least disturbed one, so an
estimate is the time on a free machine, and no part takes more than a few seconds):

* ``forward``: prepare + eval-mode forward of a batch of 16 images (the cache's chunk), per
  image; also the time to build the backbone with its weights;
* ``train``: one full-batch Adam step (train mode, fresh head) at 2 and 6 images; a line
  ``a + b * n`` through the two;
* parts a method declares itself (its ``measures``; e.g. linear-probe's ``probe``, the
  batched solver per episode and step, and mm-maml's ``maml``, one second-order meta-step).

Which parts a cell needs is its method's ``calibration`` (supervised cells: forward, train).
The inputs are random three-channel images (the backbone sees three channels whatever the
dataset stores), so a part depends on the backbone, the image size, the device and the
threads only: it is timed once per machine and cached in ``calibration.json`` of the feature
cache folder (``--cache``; without a cache, of the benchmark folder).
"""

from __future__ import annotations

import copy
import platform
import time
from pathlib import Path
from typing import Any

import torch

from medimeta.bench.settings import SUPERVISED
from medimeta.data.device import channels_last_default
from medimeta.features.cache import CHUNK
from medimeta.features.reader import EpisodeReader
from medimeta.logs import Log
from medimeta.models import make_head, make_loss
from medimeta.models.backbone import Backbone
from medimeta.models.build import build_backbone
from medimeta.runs.files import read_json, write_json
from medimeta.train.fewshot.calibration import Measure, Probe, timed
from medimeta.train.fewshot.registry import all_methods, get_method
from medimeta.train.model import Classifier

FILE = "calibration.json"
SUPERVISED_PARTS = ("forward", "train")
MULTICLASS = "MULTICLASS_CLASSIFICATION"
TRAIN_SIZES = (2, 6)  # images of the two timed training steps


def parts_of(method: str) -> tuple[str, ...]:
    """The calibration parts a benchmark method's cost model reads."""
    return SUPERVISED_PARTS if method == SUPERVISED else get_method(method).calibration


class Calibrator:
    """Measures (or reads from ``DIR/calibration.json``) the parts the methods need."""

    def __init__(self, directory: Path, device: torch.device, log: Log | None = None) -> None:
        self.path = directory / FILE
        self.device = device
        self.log = log or (lambda _m: None)
        try:
            self.data: dict[str, Any] = dict(read_json(self.path))
        except (OSError, ValueError):
            self.data = {}
        self._setups: dict[tuple[Any, ...], tuple[Backbone, EpisodeReader, float]] = {}

    def key(self, part: str, backbone: str, size: int) -> str:
        return (
            f"{part}|{backbone}|{size}px|{self.device.type}|threads={torch.get_num_threads()}|"
            f"torch={torch.__version__}|{platform.machine()}"
        )

    def get(
        self,
        part: str,
        backbone: str,
        pretrained: bool | str,
        size: int,
        normalizer: Any,
    ) -> dict[str, Any]:
        """The measurement of ``part`` (measured now if not cached)."""
        key = self.key(part, backbone, size)
        if key not in self.data:
            self.log(f"calibrating {part} of {backbone} at {size} px ...")
            model, reader, build_s = self.setup(backbone, pretrained, size, normalizer)
            t0 = time.perf_counter()
            result = measure(part)(Probe(model, reader, size))
            result.update(build_s=build_s, calibration_s=time.perf_counter() - t0)
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


def measure_forward(probe: Probe) -> dict[str, Any]:
    x = torch.randint(0, 256, (CHUNK, 3, probe.size, probe.size), dtype=torch.uint8)

    @torch.no_grad()
    def once() -> None:
        probe.backbone(probe.reader.prepare(x))

    probe.backbone.eval()
    seconds = timed(once, 5)
    return {"s_per_image": seconds / CHUNK, "batch": CHUNK}


def measure_train(probe: Probe) -> dict[str, Any]:
    backbone, device = probe.backbone, probe.reader.device
    model = Classifier(
        copy.deepcopy(backbone),
        make_head(MULTICLASS, 3, backbone.num_features, "zero").to(device),
        MULTICLASS,
    )
    loss_fn = make_loss(MULTICLASS)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    model.train()
    points: dict[int, float] = {}
    for n in TRAIN_SIZES:
        x, y = probe.batch(n), torch.arange(n, device=device) % 3

        def step(x: torch.Tensor = x, y: torch.Tensor = y) -> None:
            loss = loss_fn(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        points[n] = timed(step, 2)
    small, large = TRAIN_SIZES
    b = max((points[large] - points[small]) / (large - small), 0.0)
    a = max(points[small] - b * small, 0.0)
    return {"a": a, "b": b, "points": {str(k): v for k, v in points.items()}}


MEASURES: dict[str, Measure] = {
    "forward": measure_forward,
    "train": measure_train,
}


def measure(part: str) -> Measure:
    """The timing function of ``part``: a shared one, or the method that declares it."""
    if part in MEASURES:
        return MEASURES[part]
    for method in all_methods():
        if part in method.measures:
            return method.measures[part]
    raise KeyError(f"no method declares the calibration part {part!r}")
