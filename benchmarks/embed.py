"""``medimeta embed`` throughput against the pure model forward, in the same run.

A ViT-S-sized random transformers ViT (384 wide, 12 layers, 6 heads, patch 16, 224 px; 21.7M
parameters) is saved with its image processor into a model folder and embedded as
``hf:FOLDER`` on the ``bus`` dataset (built from ``$MEDIMETA_REALDATA/busi-256``, else from a
generated BUSI-like tree), split ``--split``:

* forward: ``backbone(x)`` (eval, no grad) over the batches of the embedding (16 images), the
  batches read and preprocessed before the clock starts;
* embed: what ``medimeta embed`` does once the model is built (the same backbone object): the
  feature cache's table of those rows into a fresh cache: cache key (sha256 of the state and
  of ``images.hdf5``), reading, the model's preprocessing, the forward and writing the cache
  file; reading and preprocessing of the next batch overlap the forward of this one.

One warm-up forward, then rounds of forward, embed, forward; each round's ratio is the embed
rate over the mean of the two forward rates around it; the median over rounds is reported.
``--resize`` adds a resizing processor (DINOv2's: shortest edge 256 bicubic, crop 224).
Writes ``benchmarks/results/embed.json``.
Usage: python benchmarks/embed.py [--split test] [--repeats 3] [--resize] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from anchor.harness import load, machine
from medimeta.safeio import write_json

RESULTS = Path(__file__).resolve().parent / "results"
VIT_S = {"hidden_size": 384, "num_hidden_layers": 12, "num_attention_heads": 6}
VIT_S["intermediate_size"] = 1536


def dataset(work: Path) -> Path:
    from medimeta.builders import build_dataset
    from medimeta.synthetic import make_busi_like_tree

    real = Path(os.environ.get("MEDIMETA_REALDATA", "../shared/realdata")) / "busi-256"
    source = real if real.is_dir() else make_busi_like_tree(work / "tree", per_class=60)
    build_dataset("bus", source, root=work / "root", workers=1)
    return work / "root"


def model_folder(work: Path, resize: bool) -> Path:
    import transformers as T

    T.utils.logging.set_verbosity_error()
    torch.manual_seed(0)
    folder = work / ("vit_s_resize" if resize else "vit_s")
    T.ViTModel(T.ViTConfig(**VIT_S, image_size=224, patch_size=16)).save_pretrained(folder)
    proc = (
        T.BitImageProcessor(size={"shortest_edge": 256}, crop_size={"height": 224, "width": 224})
        if resize
        else T.ViTImageProcessor()
    )
    proc.save_pretrained(folder)
    return folder


def setup(name: str, root: Path, split: str) -> tuple[object, object, np.ndarray]:
    """The backbone (built once, warmed up), its reader and the rows of the split."""
    from medimeta.features.reader import reader_for
    from medimeta.format.reader import DatasetFolder
    from medimeta.models.build import build_backbone

    backbone = build_backbone(name, pretrained=True).eval()
    folder = DatasetFolder(root / "bus")
    rows = folder.split_indices([split]) if split != "all" else np.arange(folder.num_samples)
    reader = reader_for(backbone, image_size=None, device=torch.device("cpu"))
    with torch.no_grad():
        backbone(reader.read(root / "bus", rows[:16]))  # warm-up: kernels, allocator
    return backbone, reader, rows


def forward_rate(backbone: Any, reader: Any, root: Path, rows: np.ndarray) -> float:
    """Images per second of the pure forward over already prepared batches."""
    from medimeta.features.cache import CHUNK

    batches = [reader.read(root / "bus", rows[i : i + CHUNK]) for i in range(0, rows.size, CHUNK)]
    t0 = time.perf_counter()
    with torch.no_grad():
        for x in batches:
            backbone(x)
    return rows.size / (time.perf_counter() - t0)


def embed_rate(
    name: str, backbone: Any, reader: Any, root: Path, split: str, rows: np.ndarray, cache: Path
) -> float:
    """Images per second of ``medimeta embed``'s work after the model is built (what
    embed_dataset does next: the cache table of the rows, computed and written)."""
    from medimeta.features.cache import FeatureCache

    t0 = time.perf_counter()
    table = FeatureCache(cache).table(
        folder=root / "bus", split=split, rows=rows, backbone=backbone, backbone_name=name,
        reader=reader,
    )  # fmt: skip
    seconds = time.perf_counter() - t0
    assert table.info["computed"] == rows.size
    return rows.size / seconds


def measure(name: str, root: Path, split: str, repeats: int, work: Path) -> dict[str, object]:
    """Rounds of forward, embed, forward: each round's ratio is the embed rate over the mean of
    the two forward rates around it (a load that drifts during the round cancels)."""
    backbone, reader, rows = setup(name, root, split)
    fwd, emb, ratios = [], [], []
    for r in range(repeats):
        before = forward_rate(backbone, reader, root, rows)
        emb.append(embed_rate(name, backbone, reader, root, split, rows, work / f"cache{r}"))
        after = forward_rate(backbone, reader, root, rows)
        fwd += [before, after]
        ratios.append(emb[-1] / ((before + after) / 2))
    return {
        "images": int(rows.size),
        "forward_images_per_s": fwd,
        "embed_images_per_s": emb,
        "round_ratios": ratios,
        "forward_median": statistics.median(fwd),
        "embed_median": statistics.median(emb),
        "ratio_median": statistics.median(ratios),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="test")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--resize", action="store_true", help="also a resizing processor")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, default=RESULTS / "embed.json")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    load_before = load()
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        root = dataset(work)
        for resize in (False, True) if args.resize else (False,):
            key = "vit_s_224_dinov2_processor" if resize else "vit_s_224"
            name = f"hf:{model_folder(work, resize)}"
            results[key] = measure(name, root, args.split, args.repeats, work)
            m = results[key]
            print(
                f"{key}: embed {m['embed_median']:.1f} img/s, "  # type: ignore[index]
                f"forward {m['forward_median']:.1f} img/s, "  # type: ignore[index]
                f"ratio {m['ratio_median']:.3f} ({m['images']} images)"  # type: ignore[index]
            )
    out = {
        "benchmark": "embed",
        "protocol": {
            "model": "random transformers ViT-S/16 (384 wide, 12 layers, 6 heads), 224 px",
            "data": f"bus ({args.split}), 224 x 224 grey stored, expanded to RGB",
            "batch": 16,
            "repeats": args.repeats,
            "warmup": "one forward of 16 images",
            "ratio": "per round: embed images/s / mean of the pure forward images/s just "
            "before and just after; median over rounds",
        },
        "load_before": load_before,
        "load_after": load(),
        "machine": machine(),
        "results": results,
    }
    write_json(args.out, out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
