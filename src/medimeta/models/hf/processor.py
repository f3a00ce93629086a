"""A model folder's preprocessing as :class:`~medimeta.models.preprocessing.Preprocessing`.

* transformers folders: ``preprocessor_config.json`` read by transformers' own slow (PIL)
  image processor class, so class defaults and legacy forms (an int ``size``, ``crop_pct``)
  resolve as transformers resolves them; the resolved steps become a Preprocessing.
* open_clip folders: ``open_clip_config.json`` (``preprocess_cfg`` mean/std, the tower's
  ``image_size``): open_clip's eval transform, bicubic shortest-edge resize and centre crop.
* timm folders: ``config.json``'s ``pretrained_cfg`` (input size, interpolation, crop_pct,
  mean/std): timm's eval transform, shortest edge ``int(size / crop_pct)``, centre crop.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from medimeta.data.pixels import get_normalization
from medimeta.errors import FormatError, UnknownNameError
from medimeta.models.preprocessing import RESAMPLE, Preprocessing

PROCESSOR_FILE = "preprocessor_config.json"
#: The slow (PIL) image processors whose steps are resize, centre crop, rescale, normalise.
SUPPORTED_PROCESSORS = (
    "BeitImageProcessor",
    "BitImageProcessor",
    "CLIPImageProcessor",
    "ConvNextImageProcessor",
    "DeiTImageProcessor",
    "SiglipImageProcessor",
    "ViTImageProcessor",
)
_RESAMPLE_NAMES = {v: k for k, v in RESAMPLE.items()}


def _resample(value: Any, path: Path) -> str:
    number = int(getattr(value, "value", value) if value is not None else 2)
    if number not in _RESAMPLE_NAMES:
        raise FormatError(path, "unknown resampling filter", key="resample", actual=value)
    return _RESAMPLE_NAMES[number]


def _three(values: Any) -> tuple[float, float, float]:
    if isinstance(values, int | float):
        return (float(values),) * 3
    out = tuple(float(v) for v in values)
    return (out * 3)[:3] if len(out) == 1 else (out[0], out[1], out[2])


def _resize(proc: Any, name: str, path: Path) -> tuple[str, tuple[int, ...], list[tuple[int, int]]]:
    """Resize rule, size and the crops the resize itself implies (ConvNeXt's crop_pct)."""
    if not proc.do_resize:
        return "none", (), []
    size = proc.size
    if name == "ConvNextImageProcessor":
        edge = int(size.shortest_edge)
        if edge < 384:  # shortest edge to edge / crop_pct, then a centre crop to edge
            return "shortest_edge", (int(edge / proc.crop_pct),), [(edge, edge)]
        return "exact", (edge, edge), []
    if size.height and size.width:
        return "exact", (int(size.height), int(size.width)), []
    if size.shortest_edge and not size.longest_edge:
        return "shortest_edge", (int(size.shortest_edge),), []
    raise FormatError(
        path,
        "unsupported resize rule",
        key="size",
        expected="{height, width} or {shortest_edge}",
        actual=str(size),
    )


def from_processor(proc: Any, path: Path) -> Preprocessing:
    """The steps of a transformers slow image processor instance."""
    name = type(proc).__name__.removesuffix("Pil")
    if name not in SUPPORTED_PROCESSORS:
        raise UnknownNameError("image processor", name, SUPPORTED_PROCESSORS, str(path))
    if getattr(proc, "do_pad", False):
        raise FormatError(path, "padding is not supported", key="do_pad", expected=False)
    rule, size, crops = _resize(proc, name, path)
    if getattr(proc, "do_center_crop", False):
        crop = proc.crop_size
        crops.append((int(crop.height), int(crop.width)))
    normalize = bool(proc.do_normalize)
    return Preprocessing(
        resize=rule,
        size=size,
        resample=_resample(proc.resample, path),
        crops=tuple(crops),
        rescale=float(proc.rescale_factor) if proc.do_rescale else None,
        mean=_three(proc.image_mean) if normalize else None,
        std=_three(proc.image_std) if normalize else None,
        source=f"{name} ({path})",
    )


def transformers_preprocessing(folder: Path) -> Preprocessing:
    """The preprocessing of a transformers model folder (its ``preprocessor_config.json``)."""
    path = folder / PROCESSOR_FILE
    if not path.is_file():
        raise FormatError(
            path,
            "missing: an hf: backbone takes its preprocessing from the model folder",
            fix="save the image processor beside the model (processor.save_pretrained(FOLDER))",
        )
    from transformers import AutoImageProcessor

    from medimeta.models.hf.quiet import quiet_transformers

    with quiet_transformers():
        proc = AutoImageProcessor.from_pretrained(str(folder), backend="pil", local_files_only=True)
    return from_processor(proc, path)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FormatError(path, f"cannot be read as JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise FormatError(path, "not a JSON object")
    return data


def open_clip_preprocessing(path: Path) -> Preprocessing:
    """open_clip's eval transform of ``open_clip_config.json``: bicubic resize of the shortest
    edge to the image size, centre crop, rescale, the config's mean/std (CLIP's by default)."""
    cfg = _read_json(path)
    size = cfg.get("model_cfg", {}).get("vision_cfg", {}).get("image_size", 224)
    side = int(size[0] if isinstance(size, list) else size)
    pre = cfg.get("preprocess_cfg", {})
    clip_mean, clip_std = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
    return Preprocessing(
        resize="shortest_edge",
        size=(side,),
        resample=str(pre.get("interpolation", "bicubic")),
        crops=((side, side),),
        crop_rule="torchvision",
        mean=_three(pre.get("mean", clip_mean)),
        std=_three(pre.get("std", clip_std)),
        source=f"open_clip eval transform ({path})",
    )


def timm_preprocessing(path: Path) -> Preprocessing:
    """timm's eval transform of a timm ``config.json`` (``pretrained_cfg``)."""
    cfg = _read_json(path).get("pretrained_cfg", {})
    side = int(cfg.get("input_size", (3, 224, 224))[-1])
    crop_pct = float(cfg.get("crop_pct", 0.875))
    imagenet = get_normalization("imagenet")
    return Preprocessing(
        resize="shortest_edge",
        size=(math.floor(side / crop_pct),),
        resample=str(cfg.get("interpolation", "bicubic")),
        crops=((side, side),),
        crop_rule="torchvision",
        mean=_three(cfg.get("mean", imagenet.mean)),
        std=_three(cfg.get("std", imagenet.std)),
        source=f"timm eval transform ({path})",
    )
