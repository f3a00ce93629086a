"""Eval-mode features of images, computed in chunks, with what is done handed out as it goes.

:func:`embed_rows` runs the backbone on chunks of a dataset's rows, read and prepared as the
episode reader prepares episodes. Every ``flush_s`` seconds (and at the end) it hands the
features computed since the last hand-out to ``save``, so that a killed or interrupted run
keeps them; on Ctrl-C it hands out what is done before the interruption goes on.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from medimeta.features.reader import EpisodeReader
from medimeta.models.backbone import Backbone
from medimeta.progress import Progress

FLUSH_S = 60.0  # while embedding, the features computed so far are saved this often
Save = Callable[[np.ndarray, np.ndarray], None]


def state_sha256(module: torch.nn.Module) -> str:
    """sha256 over the names, dtypes, shapes and bytes of a module's state dict."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


@torch.no_grad()
def embed_rows(
    folder: Path,
    chunks: list[np.ndarray],
    backbone: Backbone,
    reader: EpisodeReader,
    progress: bool = False,
    label: str = "embed",
    save: Save | None = None,
    flush_s: float | None = None,
) -> np.ndarray:
    """Eval-mode features (float32) of each chunk of global indices, in order; ``save(rows,
    features)`` gets the new ones every ``flush_s`` seconds (default :data:`FLUSH_S`), at the
    end and when the loop is interrupted."""
    flush_s = FLUSH_S if flush_s is None else flush_s
    was_training = backbone.training
    backbone.eval()
    out: list[np.ndarray] = []
    saved = 0  # chunks handed to ``save``
    last = time.perf_counter()

    def hand_out() -> None:
        nonlocal saved, last
        if save is not None and saved < len(out):
            save(np.concatenate(chunks[saved : len(out)]), np.concatenate(out[saved:]))
            saved, last = len(out), time.perf_counter()

    try:
        with Progress(progress, len(chunks), label) as bar:
            for x in reader.batches(folder, chunks):  # the next batch is read meanwhile
                out.append(backbone(x).float().cpu().numpy())
                bar.advance()
                if time.perf_counter() - last > flush_s:
                    hand_out()
        hand_out()
    except KeyboardInterrupt:
        hand_out()
        raise
    finally:
        backbone.train(was_training)
    if not out:
        return np.empty((0, backbone.num_features), np.float32)
    return np.concatenate(out).astype(np.float32, copy=False)
