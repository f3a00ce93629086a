"""Image preprocessing primitives used by the dataset builders.

``geometry``: square padding / cropping and resizing to 224 px; ``intensity``: colour modes,
16-bit to 8-bit, CT windowing, mask thresholds; ``crops``: box crops (zero padded), physically
square crops, CBIS-style ROI crops and volume slicing. Each module documents its exact rules.
"""

from medimeta.preprocess.crops import (
    Box,
    Crop,
    VolumeSlice,
    crop_physically_square,
    crop_with_padding,
    grow_axis,
    mask_bbox,
    physically_square_box,
    roi_crop,
    slice_through_box,
)
from medimeta.preprocess.geometry import (
    OUTPUT_SIZE,
    ResizeResult,
    center_crop_square,
    image_size,
    pad_offset,
    pad_to_square,
    resize_square,
)
from medimeta.preprocess.intensity import binarize, ct_window, scale_to_uint8, to_mode

__all__ = [
    "OUTPUT_SIZE",
    "Box",
    "Crop",
    "ResizeResult",
    "VolumeSlice",
    "binarize",
    "center_crop_square",
    "crop_physically_square",
    "crop_with_padding",
    "ct_window",
    "grow_axis",
    "image_size",
    "mask_bbox",
    "pad_offset",
    "pad_to_square",
    "physically_square_box",
    "resize_square",
    "roi_crop",
    "scale_to_uint8",
    "slice_through_box",
    "to_mode",
]
