"""Reproductions of published baselines on the real data in ../shared/realdata.

Usage (from the repository root; each step is resumable and writes
``benchmarks/results/repro_<step>.json``)::

    python benchmarks/repro.py prepare          # convert BreastMNIST, build bus and pbc
    python benchmarks/repro.py episodes         # 100 5-shot/10-query episodes per target
    python benchmarks/repro.py fewshot-probe    # linear probe, 100 episodes, bus and pbc
    python benchmarks/repro.py bus-supervised   # efficientnet_lite0 @224, paper preset
    python benchmarks/repro.py breastmnist      # ResNet-18 (28), MedMNIST preset, 3 seeds
    python benchmarks/repro.py finetune-lr      # fine-tuning lr on 3 selection episodes
    python benchmarks/repro.py fewshot-finetune # IM-PT fine-tuning, first 20 episodes
    python benchmarks/repro.py summary          # bootstrap CIs of the supervised AUROCs
    python benchmarks/repro.py all              # everything above, in this order

Options: ``--data`` (dataset root, default /work/repro/data), ``--runs`` (run folders,
default /work/repro/runs), ``--realdata`` (default ../shared/realdata), ``--epochs`` (bus
maximum epochs), ``--finetune-episodes``, ``--finetune-lr`` (default 1e-3, see finetune-lr).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from medimeta.evaluate.metrics import UndefinedMetricWarning  # noqa: E402
from medimeta.runs.files import environment, jsonable, write_json  # noqa: E402
from medimeta.runs.model import RunRecord  # noqa: E402
from medimeta.runs.record import is_run_folder, predictions_file, read_run  # noqa: E402
from medimeta.train import load_checkpoint, preset, train_supervised  # noqa: E402
from medimeta.train.settings import EpisodePlan, RunSettings  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
TARGETS = {"bus": "bus:case category", "pbc": "pbc:cell class"}
PUBLISHED = {
    "breastmnist": {
        "source": "MedMNIST v2 (Yang et al. 2023, Sci Data), ResNet-18 (28)",
        "auc": 0.901,
        "acc": 0.863,
    },
    "bus-supervised": {
        "source": "MedIMeta Table 3 (AUROC %, test)",
        "resnet18": 96.0,
        "resnet50": 96.6,
    },
    "fewshot": {
        "source": "MedIMeta Table 4, ImageNet ResNet18, AUROC % over 100 5-shot episodes",
        "bus": "71.4 ± 1.8",
        "pbc": "89.6 ± 0.6",
        "resnet50": {"bus": "72.9 ± 1.7", "pbc": "94.4 ± 0.5"},
    },
}


def _log(msg: str) -> None:
    print(time.strftime("%H:%M:%S"), msg, flush=True)


def _save(step: str, record: dict[str, Any]) -> None:
    record = {
        "step": step,
        "environment": environment(),
        "torch_threads": torch.get_num_threads(),
        **record,
    }
    path = write_json(RESULTS / f"repro_{step}.json", jsonable(record))
    _log(f"wrote {path}")


def prepare(args: argparse.Namespace) -> None:
    from medimeta.builders import build_dataset
    from medimeta.convert import convert_medmnist

    t0 = time.perf_counter()
    real = Path(args.realdata)
    out: dict[str, Any] = {}
    if not (args.data / "breastmnist").is_dir():
        convert_medmnist(real / "medmnist-v2-28" / "breastmnist.npz", args.data)
    out["breastmnist"] = str(args.data / "breastmnist")
    for ds, src, partial in (("bus", "busi-256", False), ("pbc", "pbc-subset", True)):
        if not (args.data / ds).is_dir():
            build_dataset(ds, real / src, root=args.data, partial=partial)
        out[ds] = str(args.data / ds)
    _save("prepare", {"datasets": out, "wall_s": time.perf_counter() - t0})


def episodes(args: argparse.Namespace) -> dict[str, Path]:
    from medimeta.episodes import EpisodeSampler

    paths = {}
    for name, target in TARGETS.items():
        path = args.runs / "episodes" / f"{name}_5shot_10query_100_seed0.json"
        if not path.is_file():
            sampler = EpisodeSampler.from_root(
                args.data, target, None, shots=5, queries=10, seed=0, num_episodes=100
            )
            sampler.sample().save(path)
        paths[name] = path
    return paths


def _run_episodes(
    args: argparse.Namespace, cfg: Any, file: Path, out: Path, limit: int | None = None
) -> RunRecord:
    """``run_fewshot`` on a saved episode file (resumes finished episodes in ``out``)."""
    from medimeta.train.fewshot import run_fewshot

    with warnings.catch_warnings():
        # single-class guards warn per episode; the NaNs are counted in the summary
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        record = run_fewshot(
            args.data,
            None,
            cfg,
            episodes=EpisodePlan(file=file, limit=limit),
            run=RunSettings(out_dir=out, resume=True),
            log=_log,
        )
    if record is None:  # only ranks other than the main one get None
        raise SystemExit("run_fewshot returned no record (run this script in one process)")
    return record


def _aurocs(record: RunRecord) -> list[float]:
    """AUROC of every evaluated episode (NaN where undefined), in episode order."""
    values = [(e.get("metrics") or {}).get("auroc") for e in record.per_episode]
    return [math.nan if v is None else float(v) for v in values]


def _fewshot(
    args: argparse.Namespace, method: str, limit: int | None, lr: float | None = None
) -> dict[str, Any]:
    from medimeta.bench.merge import row_order
    from medimeta.runs.tables import merge_tables, to_markdown
    from medimeta.train.fewshot import FewShotConfig

    files = episodes(args)
    records = {}
    for name, file in files.items():
        cfg = FewShotConfig(method=method, backbone="efficientnet_lite0", pretrained=True)
        cfg = cfg.with_overrides(finetune_lr=lr)
        _log(f"{method} on {name} ({limit or 100} episodes)")
        records[name] = _run_episodes(args, cfg, file, args.runs / "fewshot" / name / method, limit)
    table = to_markdown(merge_tables(list(records.values()), "auroc", row_order()))
    _log("\n" + table)
    return {
        "published": PUBLISHED["fewshot"],
        "table": table,
        "results": {
            n: {
                "summary": r.summary,
                "episodes": r.protocol["episodes"],
                "config": r.settings,
                "timings": r.details["timings"],
                "backbone_weights": (r.protocol.get("backbone") or {}).get("weights"),
                "per_episode_auroc": _aurocs(r),
            }
            for n, r in records.items()
        },
        "commands": [
            f"medimeta fewshot --root {args.data} --episodes-file {files[n]} "
            f"--method {method} --backbone efficientnet_lite0"
            + (f" --limit {limit}" if limit else "")
            + (f" --lr {lr:g}" if lr is not None else "")
            for n in files
        ],
    }


def _compute_s(rec: dict[str, Any]) -> dict[str, Any]:
    """Seconds spent on the episodes of each target, summed over all (resumed) calls."""
    per = {n: r["timings"]["episode_sum_s"] for n, r in rec["results"].items()}
    return {"compute_s": sum(per.values()), "compute_s_per_target": per}


def fewshot_probe(args: argparse.Namespace) -> None:
    t0 = time.perf_counter()
    rec = _fewshot(args, "linear-probe", None)
    _save("fewshot_probe", {**rec, **_compute_s(rec), "this_call_s": time.perf_counter() - t0})


def fewshot_finetune(args: argparse.Namespace) -> None:
    t0 = time.perf_counter()
    rec = _fewshot(args, "im-pt", args.finetune_episodes, lr=args.finetune_lr)
    _save("fewshot_finetune", {**rec, **_compute_s(rec), "this_call_s": time.perf_counter() - t0})


def finetune_lr(args: argparse.Namespace) -> None:
    """Fine-tuning learning rate chosen on 3 selection episodes (seed 1), not the test ones.

    The paper's Adam lr 1e-2 collapses EfficientNet-Lite0 (constant query predictions);
    this step records the evidence for the rate used by ``fewshot-finetune``.
    """
    from medimeta.episodes import EpisodeSampler
    from medimeta.train.fewshot import FewShotConfig

    t0 = time.perf_counter()
    path = args.runs / "episodes" / "bus_5shot_10query_3_seed1_selection.json"
    if not path.is_file():
        sampler = EpisodeSampler.from_root(
            args.data, TARGETS["bus"], None, shots=5, queries=10, seed=1, num_episodes=3
        )
        sampler.sample().save(path)
    rows = {}
    for lr in (1e-2, 1e-3, 1e-4):
        cfg = FewShotConfig(method="im-pt", backbone="efficientnet_lite0", finetune_lr=lr)
        rec = _run_episodes(args, cfg, path, args.runs / "finetune-lr" / f"lr{lr:g}")
        rows[f"{lr:g}"] = {
            "auroc_mean": rec.summary["auroc"]["mean"],
            "per_episode": _aurocs(rec),
            "support_loss": [e.get("support_loss") for e in rec.per_episode],
        }
    best = max(rows, key=lambda k: rows[k]["auroc_mean"])
    _save(
        "finetune_lr",
        {
            "episodes_file": str(path),
            "episode_seed": 1,
            "target": TARGETS["bus"],
            "results": rows,
            "chosen_lr": float(best),
            "this_call_s": time.perf_counter() - t0,
        },
    )


def _train(
    args: argparse.Namespace,
    dataset_id: str,
    task: str,
    backbone: str,
    config: Any,
    seed: int,
    out: Path,
) -> Any:
    """``train_supervised`` resuming in ``out`` (a finished run is only re-evaluated)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        return train_supervised(
            args.data,
            dataset_id,
            task,
            backbone=backbone,
            config=config,
            seed=seed,
            run=RunSettings(out_dir=out, resume=True),
            log=_log,
        )


def bus_supervised(args: argparse.Namespace) -> None:
    t0 = time.perf_counter()
    config = preset("paper").with_overrides(epochs=args.epochs, image_size=224)
    out = args.runs / "bus-supervised" / "efficientnet_lite0"
    result = _train(args, "bus", "case category", "efficientnet_lite0", config, 0, out)
    r: RunRecord = result.record
    timings = r.details["timings"]
    _save(
        "bus_supervised",
        {
            "published": PUBLISHED["bus-supervised"],
            "test": r.details["test"],
            "val": r.details.get("val"),
            "best_epoch": r.details["best_epoch"],
            "epochs_run": r.details["epochs_run"],
            "stopped_early": r.details["stopped_early"],
            "config": r.settings,
            "data": r.protocol["data"],
            "backbone": r.protocol["backbone"],
            "history": result.history,
            "timings": timings,
            # the step resumes finished runs, so its own wall time can be seconds
            "compute_s": timings["train_s"] + timings["eval_s"],
            "run_dir": str(out),
            "command": f"medimeta train bus 'case category' --root {args.data} "
            f"--backbone efficientnet_lite0 --image-size 224 --preset paper "
            f"--epochs {args.epochs} --out {out}",
            "this_call_s": time.perf_counter() - t0,
        },
    )


def _last_epoch_test(args: argparse.Namespace, run: Path) -> dict[str, float]:
    """Test metrics of the final-epoch model (what the published MedMNIST script reports)."""
    from medimeta.data.splits import load_split
    from medimeta.format.reader import DatasetFolder
    from medimeta.models.build import make_normalizer
    from medimeta.train.evaluation import predict
    from medimeta.train.model import build_classifier

    folder = DatasetFolder(args.data / "breastmnist")
    task = folder.task("malignancy")
    model = build_classifier("resnet18_cifar", task, pretrained=False)
    load_checkpoint(run / "last.safetensors", model)
    test = load_split(folder, task, "test", image_size=28)
    config = preset("medmnist")
    return predict(
        model, test, make_normalizer(config, model.backbone), metrics_mode="medmnist"
    ).metrics


def breastmnist(args: argparse.Namespace) -> None:
    t0 = time.perf_counter()
    config = preset("medmnist").with_overrides(image_size=28)
    runs = []
    for seed in (0, 1, 2):
        out = args.runs / "breastmnist" / f"seed_{seed}"
        _log(f"BreastMNIST seed {seed}")
        result = _train(args, "breastmnist", "malignancy", "resnet18_cifar", config, seed, out)
        r: RunRecord = result.record
        runs.append(
            {
                "seed": seed,
                "best_epoch": r.details["best_epoch"],
                "test_best_val": r.details["test"],
                "test_last_epoch": _last_epoch_test(args, out),
                "train_s": r.details["timings"]["train_s"],
                "run_dir": str(out),
            }
        )
    summary = {}
    for key in ("test_best_val", "test_last_epoch"):
        for metric in ("auroc", "accuracy"):
            values = [
                (run[key]["metrics"] if "metrics" in run[key] else run[key])[metric] for run in runs
            ]
            summary[f"{key}_{metric}"] = {"mean": sum(values) / len(values), "values": values}
    _save(
        "breastmnist",
        {
            "published": PUBLISHED["breastmnist"],
            "summary": summary,
            "runs": runs,
            "config": config.to_dict(),
            "backbone": "resnet18_cifar",
            "data": {
                "file": str(Path(args.realdata) / "medmnist-v2-28" / "breastmnist.npz"),
                "converted": str(args.data / "breastmnist"),
                "splits": "official train/val/test",
            },
            "command": f"medimeta train breastmnist malignancy --root {args.data} "
            "--backbone resnet18_cifar --image-size 28 --preset medmnist "
            "--seed 0 --seed 1 --seed 2",
            # training time of all seeds, also when earlier calls did the work
            "compute_s": sum(run["train_s"] for run in runs),
            "this_call_s": time.perf_counter() - t0,
        },
    )


def _bootstrap(path: Path, mode: str) -> dict[str, Any]:
    from medimeta.evaluate import bootstrap_ci, compute_metrics
    from medimeta.evaluate.predictions import read_predictions

    preds = read_predictions(path)

    def auroc(y: Any, s: Any) -> float:
        return compute_metrics(preds.target, y, s, mode=mode)["auroc"]

    ci = bootstrap_ci(auroc, preds.labels, preds.metric_scores(), n=1000, seed=0)
    return {
        "file": str(path),
        "auroc": ci.estimate,
        "ci95": [ci.low, ci.high],
        "resamples": ci.n_valid,
        "method": "percentile bootstrap over test samples",
    }


def _paired(probe: dict[str, Any], finetune: dict[str, Any]) -> dict[str, Any]:
    """Fine-tuning minus linear probe on the episodes both evaluated (AUROC, per target)."""
    import numpy as np

    from medimeta.evaluate.ci import mean_ci

    out = {}
    for name, ft in finetune["results"].items():
        b = np.asarray(ft["per_episode_auroc"], dtype=float)
        a = np.asarray(probe["results"][name]["per_episode_auroc"][: b.size], dtype=float)
        out[name] = {
            "episodes": int(b.size),
            "probe_auroc": mean_ci(a),
            "finetune_auroc": mean_ci(b),
            "difference": mean_ci(b - a),
            "finetune_better": int((b > a).sum()),
            "method": "first N episodes of the same file; mean and Student-t 95 % half-width",
        }
    return out


def summary(args: argparse.Namespace) -> None:
    """Bootstrap CIs of the supervised test AUROCs and the few-shot tables in one file."""
    found: dict[str, Any] = {}
    for step in ("bus_supervised", "breastmnist", "fewshot_probe", "fewshot_finetune"):
        path = RESULTS / f"repro_{step}.json"
        if path.is_file():
            found[step] = json.loads(path.read_text())
    out: dict[str, Any] = {"steps": sorted(found)}
    if "bus_supervised" in found:
        run = Path(found["bus_supervised"]["run_dir"])
        out["bus_supervised_test_auroc"] = _bootstrap(predictions_file(run, "test"), "default")
    if "breastmnist" in found:
        out["breastmnist_test_auroc"] = [
            _bootstrap(predictions_file(Path(r["run_dir"]), "test"), "medmnist")
            for r in found["breastmnist"]["runs"]
        ]
    out["fewshot_tables"] = [
        found[s]["table"] for s in ("fewshot_probe", "fewshot_finetune") if s in found
    ]
    if "fewshot_probe" in found and "fewshot_finetune" in found:
        out["fewshot_paired"] = _paired(found["fewshot_probe"], found["fewshot_finetune"])
    _save("summary", out)


BENCH64 = Path("/work/repro/bench64")
GAP_LRS = (1e-2, 1e-3, 1e-4)


def _cell_record(bench: Path, target: str, method: str) -> RunRecord:
    """The run record of the finished benchmark cell (few-shot) of ``target`` and ``method``
    (``run.json``, or the ``results.json`` + ``cell.json`` of earlier versions)."""
    prefix = f"{target.replace(':', '_').replace(' ', '_')}_{method}_"
    found = []
    for folder in sorted((bench / "cells").glob(prefix + "*")):
        if not is_run_folder(folder):
            continue
        record = read_run(folder)
        if (record.cell or {}).get("status") == "done":
            found.append(record)
    if len(found) != 1:
        sources = [r.source for r in found]
        raise SystemExit(f"expected one finished {method} cell of {target} in {bench}: {sources}")
    return found[0]


def pbc_gap(args: argparse.Namespace) -> None:
    """Candidate causes of the pbc fine-tuning gap, on the benchmark's 20 pbc episodes.

    The fine-tuning learning rate is chosen on 3 pbc selection episodes (seed 1) for each
    BatchNorm policy (``train``: support statistics, the paper's code; ``frozen``: running
    ImageNet statistics, affine parameters trained); the chosen settings then run on the same
    20 test episodes as the benchmark's im-pt cell, and the per-episode AUROCs are compared
    pairwise with it. Same image size as the benchmark (``--image-size``).
    """
    import numpy as np

    from medimeta.episodes import EpisodeSampler
    from medimeta.evaluate.ci import mean_ci
    from medimeta.train.fewshot import FewShotConfig

    t0 = time.perf_counter()
    bench, size = args.bench, args.image_size
    base = _cell_record(bench, TARGETS["pbc"], "im-pt")
    test_file = Path(base.protocol["episodes"]["file"])
    sel = args.runs / "episodes" / "pbc_5shot_10query_3_seed1_selection.json"
    if not sel.is_file():
        sampler = EpisodeSampler.from_root(
            args.data, TARGETS["pbc"], None, shots=5, queries=10, seed=1, num_episodes=3
        )
        sampler.sample().save(sel)

    def cfg(lr: float, bn: str) -> Any:
        return FewShotConfig(
            method="im-pt", backbone="efficientnet_lite0", image_size=size,
            finetune_lr=lr, finetune_bn=bn,
        )  # fmt: skip

    selection: dict[str, Any] = {}
    chosen: dict[str, float] = {}
    for bn in ("train", "frozen"):
        rows = {}
        for lr in GAP_LRS:
            out = args.runs / "pbc-gap" / f"select_{size}px_bn{bn}_lr{lr:g}"
            rec = _run_episodes(args, cfg(lr, bn), sel, out)
            rows[f"{lr:g}"] = _aurocs(rec)
        selection[bn] = {k: {"mean": float(np.mean(v)), "per_episode": v} for k, v in rows.items()}
        chosen[bn] = float(max(rows, key=lambda k: float(np.mean(rows[k]))))
    base_auroc = np.asarray(_aurocs(base), dtype=float)
    variants: dict[str, Any] = {}
    for bn, lr in chosen.items():
        if bn == "train" and lr == base.settings["finetune_lr"]:
            continue  # the benchmark cell itself
        out = args.runs / "pbc-gap" / f"test_{size}px_bn{bn}_lr{lr:g}"
        rec = _run_episodes(args, cfg(lr, bn), test_file, out)
        b = np.asarray(_aurocs(rec), dtype=float)
        variants[f"bn {bn}, lr {lr:g}"] = {
            "config": rec.settings,
            "summary": rec.summary,
            "per_episode_auroc": b.tolist(),
            "minus_baseline": mean_ci(b - base_auroc),
            "better_episodes": int((b > base_auroc).sum()),
        }
    _save(
        "pbc_gap",
        {
            "image_size": size,
            "test_episodes_file": str(test_file),
            "selection_episodes_file": str(sel),
            "baseline": {
                "config": base.settings,
                "summary": base.summary,
                "per_episode_auroc": base_auroc.tolist(),
            },
            "selection": selection,
            "chosen_lr": chosen,
            "variants": variants,
            "this_call_s": time.perf_counter() - t0,
        },
    )


STEPS = {
    "prepare": prepare,
    "episodes": lambda a: episodes(a),
    "fewshot-probe": fewshot_probe,
    "bus-supervised": bus_supervised,
    "breastmnist": breastmnist,
    "finetune-lr": finetune_lr,
    "fewshot-finetune": fewshot_finetune,
    "summary": summary,
    "pbc-gap": pbc_gap,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=[*STEPS, "all"])
    parser.add_argument("--data", type=Path, default=Path("/work/repro/data"))
    parser.add_argument("--runs", type=Path, default=Path("/work/repro/runs"))
    parser.add_argument("--realdata", type=Path, default=REPO.parent / "shared" / "realdata")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--finetune-episodes", type=int, default=20)
    parser.add_argument("--finetune-lr", type=float, default=1e-3)
    parser.add_argument("--bench", type=Path, default=BENCH64, help="benchmark output folder")
    parser.add_argument("--image-size", type=int, default=64, help="pbc-gap image size")
    args = parser.parse_args()
    for name in list(STEPS) if args.step == "all" else [args.step]:
        _log(f"== {name}")
        STEPS[name](args)
    print(json.dumps({"done": args.step}))


if __name__ == "__main__":
    main()
