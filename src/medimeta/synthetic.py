"""Synthetic raw trees in a real source's published layout (the demo's input).

:func:`make_busi_like_tree` writes ``Dataset_BUSI_with_GT/{benign,malignant,normal}/`` with
``"<class> (k).png"`` images and ``"<class> (k)_mask.png"`` lesion masks, as the
Breast Ultrasound Images dataset (BUSI) is published, so ``medimeta build bus --partial`` turns
it into a MedIMeta folder with the real builder. The pictures imitate B-mode ultrasound: a
fan-shaped field of view, layered tissue with speckle, depth attenuation, and a lesion that is
dark and oval (benign) or dark, irregular and shadowing (malignant); normal images have none.
They are generated, not real patient data: a demo of the pipeline, not of medical accuracy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ("benign", "malignant", "normal")
WRAPPER = "Dataset_BUSI_with_GT"


def _fan(h: int, w: int) -> np.ndarray:
    """Boolean field of view of a curved probe: a sector opening downwards."""
    yy, xx = np.mgrid[0:h, 0:w]
    cy, cx = -0.35 * h, w / 2
    r = np.hypot(yy - cy, xx - cx)
    angle = np.arctan2(xx - cx, yy - cy)
    return (r > 0.4 * h) & (r < 1.3 * h) & (np.abs(angle) < 0.62)


def _smooth(values: np.ndarray, width: int) -> np.ndarray:
    kernel = np.ones(width) / width
    return np.convolve(values, kernel, mode="same")


def _smooth2d(values: np.ndarray) -> np.ndarray:
    """2x2 box average: speckle grains of about two pixels."""
    out = values.copy()
    out[1:, :] += values[:-1, :]
    out[:, 1:] += out[:, :-1].copy()
    return out / 4


def _tissue(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Layered echogenic tissue (skin, fat, glandular layers) in [0, 1]."""
    depth = np.linspace(0, 1, h)[:, None]
    layers = np.zeros((h, w))
    for _ in range(6):
        y0 = rng.uniform(0.05, 0.95)
        wave = y0 + 0.04 * np.sin(np.linspace(0, rng.uniform(2, 6), w) + rng.uniform(0, 6))
        layers += rng.uniform(0.2, 0.6) * np.exp(-(((depth - wave) / rng.uniform(0.02, 0.08)) ** 2))
    return np.clip(0.35 + layers - 0.35 * depth, 0, 1)


def _lesion_mask(rng: np.random.Generator, kind: str, h: int, w: int) -> np.ndarray:
    """Boolean lesion: a smooth oval (benign) or a spiculated blob (malignant)."""
    yy, xx = np.mgrid[0:h, 0:w]
    cy, cx = rng.uniform(0.35, 0.65) * h, rng.uniform(0.35, 0.65) * w
    ry, rx = rng.uniform(0.08, 0.14) * h, rng.uniform(0.12, 0.22) * w
    theta = np.arctan2(yy - cy, xx - cx)
    # margins overlap between the classes, as they do in practice: some benign lesions are
    # lobulated, some malignant ones nearly smooth
    roughness = rng.uniform(0.0, 0.6) if kind == "benign" else rng.uniform(0.3, 1.0)
    edge = 1.0 + sum(
        roughness * rng.uniform(0.02, 0.12) * np.sin(k * theta + rng.uniform(0, 6))
        for k in rng.choice(np.arange(2, 17), 5, replace=False)
    )
    if kind == "malignant":
        ry, rx = ry * rng.uniform(0.9, 1.3), rx * 0.9  # often taller than wide
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < edge**2


def busi_like_image(
    rng: np.random.Generator, kind: str, size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray | None]:
    """One grey image (H, W) uint8 and its lesion mask (None for ``normal``)."""
    w, h = size
    img = _tissue(rng, h, w)
    mask = None
    if kind != "normal":
        mask = _lesion_mask(rng, kind, h, w)
        darkness = rng.uniform(0.05, 0.3)
        img = np.where(mask, darkness + 0.08 * rng.random((h, w)), img)
        bottom = np.flatnonzero(mask.any(axis=1)).max()
        cols = _smooth(mask.any(axis=0).astype(float), 9)
        ramp = np.clip((np.arange(h)[:, None] - bottom) / (0.1 * h), 0, 1)
        # posterior acoustic shadowing (malignant) or enhancement (benign cysts)
        strength = rng.uniform(-0.6, 0.0) if kind == "malignant" else rng.uniform(-0.1, 0.3)
        img = np.clip(img * (1 + strength * ramp * cols[None, :]), 0, 1)
    # multiplicative speckle of coherent imaging, with a grain of a few pixels
    speckle = _smooth2d(rng.rayleigh(0.5, (h, w)))
    img = np.clip(img * speckle, 0, 1.6) / 1.6
    img *= _fan(h, w)
    return (img * 255).astype(np.uint8), mask


def make_busi_like_tree(root: str | Path, *, per_class: int = 20, seed: int = 0) -> Path:
    """Write ``root/Dataset_BUSI_with_GT/...`` with ``per_class`` images per class; return it.

    Image sizes vary as in BUSI (landscape, portrait, some under 224 px); every image has its
    ``_mask.png`` (all black for normal images, as published). The same ``seed`` gives the
    same files.
    """
    base = Path(root) / WRAPPER
    rng = np.random.default_rng(seed)
    sizes = [(320, 240), (280, 230), (240, 300), (200, 180), (300, 300)]
    for cls in CLASSES:
        (base / cls).mkdir(parents=True, exist_ok=True)
        for k in range(1, per_class + 1):
            size = sizes[int(rng.integers(len(sizes)))]
            image, mask = busi_like_image(rng, cls, size)
            Image.fromarray(image, "L").save(base / cls / f"{cls} ({k}).png")
            # BUSI publishes a mask for every image; a normal image's mask is all black
            lesion = mask if mask is not None else np.zeros(image.shape, dtype=bool)
            m = Image.fromarray(lesion.astype(np.uint8) * 255, "L")
            m.save(base / cls / f"{cls} ({k})_mask.png")
    return base
