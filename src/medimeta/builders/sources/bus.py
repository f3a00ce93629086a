"""``bus``: Breast Ultrasound Images (BUSI, Al-Dhabyani et al. 2020).

Raw layout: ``Dataset_BUSI.zip`` -> ``Dataset_BUSI_with_GT/{benign,malignant,normal}/`` with
images ``"<class> (k).png"`` and lesion masks ``"<class> (k)_mask.png"`` (some images have
further masks ``_mask_1``, ``_mask_2``). The folder holding the class folders may have any name
(e.g. a resized copy), so the class folders are what identifies the tree.

Tasks: ``case category`` from the folder (normal 0, benign 1, malignant 2), ``malignancy`` =
1 for malignant. Images: grey (``L``), zero-padded to square, bicubic ``resize`` to 224 (small
images are upscaled; the ``upscaled`` column says which). Masks: every mask of an image is
binarised, united (logical OR), padded and resized with nearest neighbour to
``masks/NNNNNN.tiff`` (mode ``1``). Split: random 70/10/20 by image, seed 42 (BUSI has no
patient ids).

Deviation from the original pipeline: it kept only the first mask of each image; here all
masks of an image are united and all their paths recorded (``original_mask_path``, ``|``-joined).
A tree without any masks (e.g. a copy that dropped them) builds without ``masks/`` and warns.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
from PIL import Image

from medimeta.builders.engine.common import (
    ImageRecipe,
    label_key,
    open_image,
    split_by_image,
)
from medimeta.builders.engine.registry import Builder, BuildPlan, register_builder
from medimeta.builders.engine.source import Part, Require, locate_parts
from medimeta.builders.engine.tree import SourceTree
from medimeta.errors import PreprocessError
from medimeta.format.record import SampleRecord
from medimeta.preprocess import binarize, pad_to_square, resize_square

CLASSES = ("benign", "malignant", "normal")
_NAME = re.compile(r"^(?P<stem>.+ \(\d+\))(?P<mask>_mask(?:_(?P<k>\d+))?)?\.png$", re.IGNORECASE)
RECIPE = ImageRecipe(mode="L", square="pad", method="resize", allow_upscale=True)

MASK_NOTE = (
    "bus: every lesion mask of an image (_mask, _mask_1, _mask_2, ...) is united into "
    "masks/NNNNNN.tiff; the original pipeline kept only the first mask."
)
NO_MASK_NOTE = "bus: the source tree had no lesion masks, so this build has no masks/ folder."
NOTES = [
    "bus: split is random by image (70/10/20, seed 42, SHA-256 order): BUSI has no patient "
    "ids, so images of one patient may fall into different splits (as in the release).",
]


def process_bus(record: SampleRecord) -> tuple[Image.Image, dict[str, Any], dict[str, Any]]:
    """Image -> L, pad, resize 224 bicubic; masks united, pad, resize nearest (mode 1)."""
    image_file, mask_files = record.source
    raw = open_image(image_file)
    image, notes = RECIPE.apply(raw)
    if not mask_files:
        return image, notes, {}
    union = np.zeros((raw.size[1], raw.size[0]), dtype=bool)
    for mask_file in mask_files:
        mask = open_image(mask_file)
        if mask.size != raw.size:
            raise PreprocessError(
                f"{mask_file.location()}: mask is {mask.size[0]}x{mask.size[1]} px but its "
                f"image {image_file.path} is {raw.size[0]}x{raw.size[1]} px"
            )
        union |= binarize(mask.convert("L"))
    resized = resize_square(pad_to_square(union), allow_upscale=True, is_mask=True).image
    return image, notes, {"masks": Image.fromarray(resized)}


@register_builder
class BusBuilder(Builder):
    """BUSI class folders (with or without masks) -> ``bus``."""

    dataset_id = "bus"
    source_title = "BUSI: Dataset of breast ultrasound images (Al-Dhabyani et al., 2020)"
    source_help = "Dataset_BUSI.zip, the folder holding it, or the extracted Dataset_BUSI_with_GT/"

    def parts(self) -> tuple[Part, ...]:
        return (
            Part(
                name="BUSI class folders",
                anchors=CLASSES,
                requires=tuple(
                    Require(f"{c}/{c} (*).png", f"{c} images ('{c} (k).png')") for c in CLASSES
                ),
                expected=tuple(
                    p for c in CLASSES for p in (f"{c}/{c} (*).png", f"{c}/{c} (*)_mask*.png")
                ),
                hint="folders benign/, malignant/, normal/ (Dataset_BUSI_with_GT/)",
            ),
        )

    def plan(self, tree: SourceTree, *, partial: bool = False) -> BuildPlan:
        report = self.new_report(tree)
        located = locate_parts(tree, self.parts(), report, partial=partial)
        prefix = located["BUSI class folders"].prefix or ""
        category = self.spec.task("case category").labels
        images: list[tuple[str, Any]] = []
        masks: dict[str, list[Any]] = {}
        for cls in CLASSES:
            for f in tree.under(f"{prefix}{cls}/"):
                m = _NAME.match(f.name)
                if m is None or f.parent != f"{prefix}{cls}" or not f.name.startswith(cls):
                    continue
                key = f"{cls}/{m.group('stem')}"
                if m.group("mask"):
                    masks.setdefault(key, []).append(f)
                else:
                    images.append((cls, f))
        have_masks = bool(masks)
        if not have_masks and images:
            report.warnings.append(
                "no lesion masks ('<name>_mask.png') found: building without masks/ (the "
                "publisher's Dataset_BUSI_with_GT has one per image)"
            )
        records: list[SampleRecord] = []
        for cls, f in images:
            key = f"{cls}/{f.stem}"
            own = sorted(masks.pop(key, []), key=lambda x: (len(x.name), x.name))
            if have_masks and not own:
                report.miss(f"{prefix}{key}_mask.png (mask of {f.path})", partial=partial)
            label = label_key(category, cls, f.path)
            records.append(
                SampleRecord(
                    source=(f, tuple(own)),
                    labels={"case category": label, "malignancy": int(cls == "malignant")},
                    split="train",
                    original_split="train",
                    original_filepath=f.relative_to(prefix),
                    annotations={
                        "original_mask_path": "|".join(m.relative_to(prefix) for m in own),
                        "number_of_masks": len(own),
                    },
                )
            )
        for key, orphans in sorted(masks.items()):
            for f in orphans:
                report.unexpected.append(f"{f.path} (mask without image {key}.png)")
        records, manifest = split_by_image(records, note="per image: BUSI has no patient ids")
        return BuildPlan(
            self.dataset_id,
            records,
            process_bus,
            report,
            manifest,
            notes=[MASK_NOTE if have_masks else NO_MASK_NOTE, *NOTES],
            partial=partial,
            aux_columns={"masks": "mask_path"} if have_masks else {},
        )
