"""What a backbone is: images (B, C, H, W) -> pooled features (B, num_features).

Pretrained weights are described as data (:class:`PretrainedCfg`): input size, normalisation,
first convolution and classifier names, and where the default weights file comes from.
"""

from __future__ import annotations

import abc
import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from medimeta.data.pixels import NORMALIZATIONS, Normalizer, get_normalization
from medimeta.errors import ShapeError
from medimeta.logs import plural
from medimeta.models.preprocessing import Preprocessing

# The ImageNet statistics of the preset table (:data:`medimeta.data.pixels.NORMALIZATIONS`).
IMAGENET_MEAN: tuple[float, ...] = NORMALIZATIONS["imagenet"].mean
IMAGENET_STD: tuple[float, ...] = NORMALIZATIONS["imagenet"].std


@dataclass(frozen=True)
class PretrainedCfg:
    """Facts about a backbone's pretrained weights (timm-style ``pretrained_cfg``).

    ``first_conv`` and ``classifier`` name the modules in the source checkpoint: the first
    is adapted when ``in_chans != 3``, the second is dropped when loading (a backbone has no
    classifier). ``file_name`` is the default weights file: inside the installed Python
    package ``package`` when set, otherwise looked up in the weights folder
    (``$MEDIMETA_WEIGHTS``, else ``$XDG_CACHE_HOME/medimeta/weights``; ``medimeta weights get``
    installs there) and the torch hub cache. ``url`` says where to get it.

    ``normalization`` names the preset of :data:`medimeta.data.pixels.NORMALIZATIONS` the
    weights expect; an external library's own statistics come as a :class:`Normalizer`.
    ``mean`` and ``std`` give its values (a preset's one per input channel).
    """

    source: str
    input_size: tuple[int, int, int] = (3, 224, 224)
    normalization: str | Normalizer = "imagenet"
    interpolation: str = "bilinear"
    first_conv: str = "conv1"
    classifier: str = "fc"
    num_classes: int = 1000
    file_name: str | None = None
    package: str | None = None
    url: str | None = None
    license: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.normalization, str):
            get_normalization(self.normalization)  # an unknown preset fails here

    @property
    def normalizer(self) -> Normalizer:
        """The normaliser of the weights' statistics."""
        if isinstance(self.normalization, Normalizer):
            return self.normalization
        return get_normalization(self.normalization)

    def _values(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        if isinstance(self.normalization, Normalizer):  # external statistics, as given
            return self.normalization.mean, self.normalization.std
        return self.normalizer.per_channel(self.input_size[0])

    @property
    def mean(self) -> tuple[float, ...]:
        return self._values()[0]

    @property
    def std(self) -> tuple[float, ...]:
        return self._values()[1]

    def to_dict(self) -> dict[str, Any]:
        """Plain, YAML/JSON-safe dict (tuples become lists) for result files.

        The normalisation appears as its ``mean`` and ``std`` values.
        """
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name == "normalization":
                out["mean"], out["std"] = list(self.mean), list(self.std)
                continue
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


class InputAdapter(nn.Module):
    """Checks the channel count; repeats a single grey channel when the backbone wants 3.

    Repetition is a broadcast view (no copy), equivalent to TorchCross's ``Expand``.
    """

    def __init__(self, in_chans: int) -> None:
        super().__init__()
        self.in_chans = in_chans

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            raise ShapeError(f"backbone input must be (B, C, H, W); got {tuple(x.shape)}")
        channels = x.shape[1]
        if channels == self.in_chans:
            return x
        if channels == 1:
            return x.expand(-1, self.in_chans, -1, -1)
        raise ShapeError(
            f"backbone expects {plural(self.in_chans, 'input channel')} (or 1, repeated); got "
            f"{channels}; "
            f"fix: create the backbone with in_chans={channels}"
        )

    def extra_repr(self) -> str:
        return f"in_chans={self.in_chans}"


class Backbone(nn.Module, abc.ABC):
    """Base class: ``forward(x) = forward_features(input_adapter(x))`` -> (B, num_features).

    Attributes: ``num_features``, ``in_chans``, ``pretrained_cfg``, ``weights`` (a record
    of the weights actually loaded: ``None`` for random init, else path and sha256),
    ``pooling`` (how the features are pooled: ``"avg"``, global average, for the CNNs) and
    ``preprocessing`` (the model's own :class:`Preprocessing`, e.g. of an ``hf:`` model; None:
    the reader's resize and the normaliser of ``pretrained_cfg``).
    The adapter has no parameters, so ``state_dict`` keys are those of the wrapped network.
    """

    pooling: str = "avg"
    preprocessing: Preprocessing | None = None

    def __init__(self, *, num_features: int, in_chans: int, pretrained_cfg: PretrainedCfg):
        super().__init__()
        self.num_features = num_features
        self.in_chans = in_chans
        self.pretrained_cfg = pretrained_cfg
        self.weights: dict[str, str] | None = None
        self.input_adapter = InputAdapter(in_chans)

    @abc.abstractmethod
    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Images with ``in_chans`` channels -> pooled features (B, num_features)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(self.input_adapter(x))

    def weights_module(self) -> nn.Module:
        """The module whose ``state_dict`` keys match the source checkpoints (here: self)."""
        return self

    def describe(self) -> dict[str, Any]:
        """What to record next to results: features, channels, pooling, weights and their cfg
        (and the model's own preprocessing when it has one)."""
        out = {
            "class": type(self).__name__,
            "num_features": self.num_features,
            "in_chans": self.in_chans,
            "pooling": self.pooling,
            "weights": self.weights,
            "pretrained_cfg": self.pretrained_cfg.to_dict(),
        }
        if self.preprocessing is not None:
            out["preprocessing"] = self.preprocessing.to_dict()
        return out
