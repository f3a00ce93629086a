"""``medimeta embed``: the embedding cache on its own, for a registered backbone or your module.

``--module FILE.py:factory`` calls ``factory()`` from that file; it returns a
:class:`~medimeta.models.backbone.Backbone` or any ``nn.Module`` mapping (B, 3, H, W) images
to (B, F) features (wrapped, F found by one forward pass). ``--weights FILE`` loads a
``.pth``/``.safetensors`` state dict into it (or into a registered backbone). The features go
to the same cache the benchmark's frozen-feature methods read, under a key naming the module,
the sha256 of the weights and of the state, so two models never share an entry.
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from torch import nn

import medimeta.safeio as safeio
from medimeta.data.device import channels_last_default
from medimeta.errors import FormatError, OptionError
from medimeta.features.cache import FeatureCache
from medimeta.features.reader import reader_for
from medimeta.features.table import FeatureTable
from medimeta.format.reader import DatasetFolder, locate_dataset
from medimeta.logs import Log
from medimeta.models.backbone import Backbone, PretrainedCfg
from medimeta.models.build import build_backbone, pretrained_choice
from medimeta.models.external import WrappedBackbone
from medimeta.models.hf.source import with_pool
from medimeta.models.registry import canonical_name
from medimeta.models.weights import load_backbone_weights, sha256_of
from medimeta.paths import cache_dir
from medimeta.runs.files import environment
from medimeta.runs.model import RunRecord, TargetRef
from medimeta.runs.record import record_beside, write_record_file


def module_backbone(spec: str, *, normalize: str = "imagenet", side: int = 224) -> Backbone:
    """The backbone ``factory()`` of ``FILE.py:factory`` returns (a module is wrapped)."""
    file, sep, factory = spec.rpartition(":")
    path = Path(file)
    if not sep or not factory or path.suffix != ".py" or not path.is_file():
        raise OptionError(f"--module takes FILE.py:factory with an existing file; got {spec!r}")
    loader_spec = importlib.util.spec_from_file_location(f"medimeta_user_{path.stem}", path)
    if loader_spec is None or loader_spec.loader is None:
        raise OptionError(f"cannot import {path}")
    module = importlib.util.module_from_spec(loader_spec)
    loader_spec.loader.exec_module(module)
    make = getattr(module, factory, None)
    if not callable(make):
        raise OptionError(f"{path} has no callable {factory!r}")
    net = make()
    if isinstance(net, Backbone):
        return net
    if not isinstance(net, nn.Module):
        raise OptionError(f"{spec} returned {type(net).__name__}, not a torch module")
    with torch.no_grad():
        was = net.training
        net.eval()
        probe = net(torch.zeros(1, 3, side, side))
        net.train(was)
    if probe.ndim < 2:
        raise OptionError(
            f"{spec}: the module must return (B, F) features; got {tuple(probe.shape)}"
        )
    cfg = PretrainedCfg(
        source=f"user module {path.name}:{factory}",
        normalization=normalize,
        first_conv="",
        classifier="",
    )
    wrapped = WrappedBackbone(
        net, num_features=int(np.prod(probe.shape[1:])), in_chans=3, pretrained_cfg=cfg
    )
    wrapped.pooling = "module output"  # whatever the module returns, flattened
    return wrapped


@dataclass(frozen=True)
class EmbedSpec:
    """Which features: a registered ``backbone`` (with its default weights, or ``weights``) or
    your ``module`` (``FILE.py:factory``), of the samples of ``split`` at ``image_size``
    (default: the stored size), normalised as ``normalize`` (``auto``: the weights' own);
    ``pool`` sets the pooling of an ``hf:`` backbone (``@pool=`` in its name)."""

    backbone: str = "efficientnet_lite0"
    module: str | None = None
    weights: str | Path | None = None
    split: str = "all"
    image_size: int | None = None
    normalize: str = "auto"
    pool: str | None = None


def embed_dataset(
    root: str | Path,
    ref: str,
    spec: EmbedSpec | None = None,
    *,
    cache: str | Path | None = None,
    device: str | None = None,
    log: Log | None = None,
    progress: bool = False,
) -> tuple[FeatureTable, dict[str, Any]]:
    """Features of every sample of ``spec.split`` of dataset ``ref`` (``ID[:TASK]``), read from
    or added to the cache; returns the table and a record (key, file, labels when TASK)."""
    spec = spec or EmbedSpec()
    backbone, module, weights = spec.backbone, spec.module, spec.weights
    split, image_size, normalize = spec.split, spec.image_size, spec.normalize
    ds, _, task = ref.partition(":")
    folder_path = locate_dataset(root, ds.strip())
    folder = DatasetFolder(folder_path)
    dev = torch.device(device) if device else torch.device("cpu")
    side = image_size or folder.spec.input_size[-1]
    if module is not None:
        net = module_backbone(module, normalize="imagenet" if normalize == "auto" else normalize)
        name = f"module:{Path(module.rpartition(':')[0]).name}:{module.rpartition(':')[2]}"
        if weights is not None:
            load_backbone_weights(net, Path(weights))
    else:
        name = backbone = with_pool(canonical_name(backbone), spec.pool) if spec.pool else backbone
        net = build_backbone(
            backbone, pretrained=Path(weights) if weights else pretrained_choice(backbone, "auto")
        )
    net = net.to(dev)
    channels_last = channels_last_default(None, dev, side)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    reader = reader_for(
        net, image_size=side, device=dev, normalize=normalize, channels_last=channels_last
    )
    rows = (
        np.arange(folder.num_samples, dtype=np.int64)
        if split == "all"
        else folder.split_indices(split.split("+"))
    )
    store = FeatureCache(cache_dir(cache, root))
    t0 = time.perf_counter()
    table = store.table(
        folder=folder_path,
        split=split,
        rows=rows,
        backbone=net,
        backbone_name=name,
        reader=reader,
        log=log,
        progress=progress,
    )
    record: dict[str, Any] = {
        "dataset": ds,
        "split": split,
        "backbone": name,
        "weights": net.weights,
        "pooling": net.pooling,
        "preprocessing": reader.preprocessing(),
        "model": net.describe().get("hf"),
        "samples": int(rows.size),
        "rows": rows,
        "features": int(table.features.shape[1]),
        "seconds": time.perf_counter() - t0,
        **table.info,
    }
    if task.strip():
        record["task"] = task.strip()
        record["labels"] = folder.labels(task.strip())[rows]
    return table, record


def export(path: str | Path, table: FeatureTable, record: dict[str, Any]) -> Path:
    """Features of the record's ``rows`` (and its ``labels``) as ``.safetensors`` or ``.h5``,
    written atomically, with an ``embedding`` run record beside it (what made them)."""
    path = Path(path)
    rows = np.asarray(record["rows"], np.int64)
    tensors = {"indices": rows, "features": table.take(rows).numpy()}
    if record.get("labels") is not None:
        tensors["labels"] = np.asarray(record["labels"], np.int64)
    if path.suffix == ".safetensors":
        from safetensors.numpy import save_file

        with safeio.atomic_path(path) as tmp:
            save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(tmp))
    elif path.suffix in (".h5", ".hdf5"):
        with safeio.atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
            for k, v in tensors.items():
                f.create_dataset(k, data=v)
    else:
        raise FormatError(path, "unknown export format", expected=[".safetensors", ".h5"])
    write_record_file(record_beside(path), _export_record(path, record))
    return path


def _export_record(path: Path, record: dict[str, Any]) -> RunRecord:
    keep = (
        *("dataset", "split", "samples", "features", "file", "key_sha256", "weights"),
        *("pooling", "preprocessing", "model"),
    )
    return RunRecord(
        kind="embedding",
        target=TargetRef(record["dataset"], record.get("task") or "–"),
        method="embed",
        backbone=record["backbone"],
        protocol={
            **{k: record.get(k) for k in keep},
            "export": {"file": str(path), "sha256": sha256_of(path)},
            "environment": environment(),
        },
        details={k: record.get(k) for k in ("seconds", "from_cache", "computed")},
    )
