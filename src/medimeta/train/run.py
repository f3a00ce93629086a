"""The epoch loop of a supervised run (see :mod:`medimeta.train.supervised` for its files
and its randomness): set-up, epochs, validation with early stopping, checkpoints, the final
evaluation and the run record."""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import medimeta.data.distributed as D
from medimeta.data.device import channels_last_default, model_input
from medimeta.data.splits import SplitData, load_split, require_nonempty
from medimeta.errors import FormatError
from medimeta.evaluate.metrics import UndefinedMetricWarning
from medimeta.evaluate.predictions import write_predictions
from medimeta.format.reader import DatasetFolder
from medimeta.logs import Log, main_only
from medimeta.models import make_loss
from medimeta.models.build import make_normalizer
from medimeta.progress import Progress
from medimeta.runs.convert import supervised_record
from medimeta.runs.files import environment, jsonable, write_csv, write_json
from medimeta.runs.integrity import DamagedResultWarning
from medimeta.runs.record import CONFIG_FILE, TRAINING_LOG, predictions_file, write_run
from medimeta.train.augment import affine_matrices, apply_affine
from medimeta.train.checkpoint import load_checkpoint, save_checkpoint
from medimeta.train.config import TrainConfig, lr_at, make_optimizer, set_lr
from medimeta.train.evaluation import Evaluation, predict
from medimeta.train.model import build_classifier
from medimeta.train.records import TrainResult, dataset_record
from medimeta.train.settings import RunSettings


def _seed_of(*parts: int) -> int:
    return int(np.random.SeedSequence(list(parts)).generate_state(1, dtype=np.uint64)[0] >> 1)


def epoch_batches(
    n: int, batch_size: int, seed: int, epoch: int, *, min_size: int, drop_last: bool
) -> list[np.ndarray]:
    """Shuffled local positions of epoch ``epoch`` cut into global batches.

    A trailing batch smaller than ``min_size`` (2 for BatchNorm, at least the world size) or
    than ``batch_size`` with ``drop_last`` is dropped.
    """
    order = np.random.default_rng([seed, epoch, 1]).permutation(n)
    batches = [order[i : i + batch_size] for i in range(0, n, batch_size)]
    if batches and (len(batches[-1]) < min_size or (drop_last and len(batches[-1]) < batch_size)):
        batches.pop()
    return batches


def _has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


class SupervisedRun:
    """One supervised run: model, splits, optimiser and the epoch loop with its checkpoints."""

    def __init__(
        self,
        root: str | Path,
        target: str,
        backbone: str,
        config: TrainConfig,
        seed: int,
        run: RunSettings,
        log: Log | None,
        env: D.DistEnv,
    ) -> None:
        self.config, self.seed, self.out_dir, self.env = config, seed, run.out_dir, env
        self.log = main_only(log, env.is_main)
        self.progress = run.progress and env.is_main
        self.device = D.device_for(env, run.device)
        dataset_id, _, task_name = target.partition(":")
        self.folder = DatasetFolder.from_root(root, dataset_id)
        self.task = self.folder.task(task_name)
        self.backbone_name = backbone
        self.model = build_classifier(
            backbone,
            self.task,
            pretrained=config.pretrained,
            head_init=config.head_init,
            ordinal=config.ordinal,
            seed=seed,
        ).to(self.device)
        self.normalizer = make_normalizer(config, self.model.backbone)
        size = config.image_size
        side = size or self.folder.spec.input_size[-1]
        self.channels_last = channels_last_default(config.channels_last, self.device, side)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        prep = self.model.backbone.preprocessing  # an hf: model's own resize and crop, RGB
        transform = None if prep is None else prep.rgb_geometry
        self.train, self.val, self.test = (
            load_split(self.folder, self.task, name, image_size=size, transform=transform)
            for name in ("train", "val", "test")
        )
        require_nonempty(self.train, "training")
        self.loss_fn = make_loss(self.task.target, ordinal=config.ordinal).to(self.device)
        self.optimizer = make_optimizer(config, self.model.parameters())
        self.net: nn.Module = self.model
        if env.active:
            self.net = nn.parallel.DistributedDataParallel(self.model)
        self.min_batch = max(2 if _has_batchnorm(self.model) else 1, env.world_size)
        self.history: list[dict[str, Any]] = []
        self.state: dict[str, Any] = {
            "epoch": 0,
            "best_value": None,
            "best_epoch": None,
            "bad_evals": 0,
        }

    # -- protocol -------------------------------------------------------------------------
    def protocol(self) -> dict[str, Any]:
        return {
            "kind": "supervised",
            "data": dataset_record(
                self.folder,
                self.task,
                train_split="train",
                val_split="val",
                test_split="test",
                split_sizes={
                    "train": len(self.train),
                    "val": len(self.val),
                    "test": len(self.test),
                },
            ),
            "backbone": {"name": self.backbone_name, **self.model.backbone.describe()},
            "config": self.config.to_dict(),
            "seed": self.seed,
            "normalization": {"mean": self.normalizer.mean, "std": self.normalizer.std},
            "image_size": self.config.image_size or self.folder.spec.input_size[-1],
            "world_size": self.env.world_size,
            "device": str(self.device),
            "environment": environment(),
        }

    # -- main loop ------------------------------------------------------------------------
    def run(self, resume: bool) -> TrainResult:
        cfg, out = self.config, self.out_dir
        if self.env.is_main:
            out.mkdir(parents=True, exist_ok=True)
            write_json(out / CONFIG_FILE, self.protocol())
        if resume and (out / "last.safetensors").is_file() and self._resumable(out):
            self._resume(out / "last.safetensors")
        use_val = len(self.val) > 0
        if not use_val:
            warnings.warn(
                f"{self.folder.id}: no validation samples; no early stopping, "
                "the last epoch is evaluated",
                UserWarning,
                stacklevel=3,
            )
        started = time.perf_counter()
        for epoch in range(int(self.state["epoch"]), cfg.epochs):
            if cfg.patience is not None and use_val and self.state["bad_evals"] >= cfg.patience:
                break
            row = self._epoch(epoch, use_val)
            self.history.append(row)
            self._save_last(epoch + 1)
            self.log(_format_row(row))
        train_time = time.perf_counter() - started
        return self._finish(use_val, train_time)

    def _epoch(self, epoch: int, use_val: bool) -> dict[str, Any]:
        cfg, env = self.config, self.env
        t0 = time.perf_counter()
        lr = lr_at(cfg, epoch)
        set_lr(self.optimizer, lr)
        self.net.train()
        batches = epoch_batches(
            len(self.train),
            cfg.batch_size,
            self.seed,
            epoch,
            min_size=self.min_batch,
            drop_last=cfg.drop_last,
        )
        gen = torch.Generator().manual_seed(_seed_of(self.seed, epoch, 2))
        loss_sum, count = 0.0, 0
        with Progress(self.progress, len(batches), f"epoch {epoch + 1}/{cfg.epochs}") as bar:
            for batch in batches:
                local = D.shard(np.arange(batch.size), env)
                theta = (
                    affine_matrices(batch.size, cfg.augment, gen) if cfg.augment.active else None
                )
                x, y = self.train.batch(batch[local])
                x01 = self.normalizer.to_float(x)
                if theta is not None:
                    x01 = apply_affine(x01, theta[torch.from_numpy(local)])
                logits = self.net(
                    model_input(x01, self.normalizer, self.device, self.channels_last)
                )
                loss = self.loss_fn(logits, y.to(self.device))
                self.optimizer.zero_grad(set_to_none=True)
                (loss * D.loss_scale(local.size, batch.size, env)).backward()
                self.optimizer.step()
                loss_sum += float(loss.detach()) * local.size
                count += local.size
                bar.advance(float(loss.detach()))
        totals = D.all_gather_objects((loss_sum, count), env)
        row: dict[str, Any] = {
            "epoch": epoch + 1,
            "lr": lr,
            "train_loss": sum(t[0] for t in totals) / max(sum(t[1] for t in totals), 1),
        }
        if use_val:
            with warnings.catch_warnings():  # per-epoch validation: the final report warns
                warnings.simplefilter("ignore", UndefinedMetricWarning)
                ev = self._evaluate(self.val)
            row["val_loss"] = ev.loss
            row.update({f"val_{k}": v for k, v in ev.metrics.items()})
            self._track(epoch + 1, ev.metrics.get(cfg.monitor, float("nan")))
        row["best_epoch"] = self.state["best_epoch"]
        row["seconds"] = time.perf_counter() - t0
        return row

    def _evaluate(self, data: SplitData, info: dict[str, Any] | None = None) -> Evaluation:
        return predict(
            self.model,
            data,
            self.normalizer,
            loss_fn=self.loss_fn,
            batch_size=self.config.eval_batch_size,
            device=self.device,
            env=self.env,
            metrics_mode=self.config.metrics_mode,
            info=info,
            channels_last=self.channels_last,
        )

    def _track(self, epoch: int, value: float) -> None:
        best = self.state["best_value"]
        if np.isfinite(value) and (best is None or value > best + self.config.min_delta):
            self.state.update(best_value=float(value), best_epoch=epoch, bad_evals=0)
            if self.env.is_main:
                save_checkpoint(
                    self.out_dir / "best.safetensors",
                    self.model,
                    record={"epoch": epoch, "value": value, "monitor": self.config.monitor},
                )
        else:
            self.state["bad_evals"] = int(self.state["bad_evals"]) + 1
        D.barrier(self.env)

    # -- checkpoints ----------------------------------------------------------------------
    def _save_last(self, epochs_done: int) -> None:
        self.state["epoch"] = epochs_done
        if self.env.is_main:
            record = {
                "state": self.state,
                "history": self.history,
                "config": self.config.to_dict(),
                "seed": self.seed,
                "backbone": self.backbone_name,
            }
            save_checkpoint(self.out_dir / "last.safetensors", self.model, self.optimizer, record)
            write_csv(self.out_dir / TRAINING_LOG, self.history)
        D.barrier(self.env)

    def _resumable(self, out: Path) -> bool:
        """Whether the checkpoints to resume from can be read; a damaged one is said so and
        the run starts again (the cell heals instead of failing for good)."""
        for name in ("last.safetensors", "best.safetensors"):
            path = out / name
            if not path.is_file():
                continue
            try:
                load_checkpoint(path)
            except FormatError as exc:
                warnings.warn(
                    f"{path}: cannot resume from it, training starts again ({exc})",
                    DamagedResultWarning,
                    stacklevel=3,
                )
                return False
        return True

    def _resume(self, path: Path) -> None:
        record = load_checkpoint(path, self.model, self.optimizer)
        stored = TrainConfig.from_dict({**record.get("config", {}), "epochs": self.config.epochs})
        if (
            stored != self.config
            or record.get("seed") != self.seed
            or record.get("backbone") != self.backbone_name
        ):
            raise FormatError(
                path,
                "cannot resume: the checkpoint was made with other settings",
                expected={
                    "config": self.config.to_dict(),
                    "seed": self.seed,
                    "backbone": self.backbone_name,
                },
                actual={
                    "config": record.get("config"),
                    "seed": record.get("seed"),
                    "backbone": record.get("backbone"),
                },
                fix="pass the same settings, or a new --out folder",
            )
        self.state = dict(record["state"])
        self.history = list(record.get("history", []))
        self.log(f"resumed from {path} after epoch {self.state['epoch']}")

    # -- final evaluation -----------------------------------------------------------------
    def _finish(self, use_val: bool, train_time: float) -> TrainResult:
        cfg, out = self.config, self.out_dir
        selected = "last"
        if cfg.select == "best" and use_val and (out / "best.safetensors").is_file():
            load_checkpoint(out / "best.safetensors", self.model)
            selected = "best"
        t0 = time.perf_counter()
        info = {
            "checkpoint": selected,
            "epoch": self.state["best_epoch"] if selected == "best" else self.state["epoch"],
            "backbone": self.backbone_name,
            "seed": self.seed,
        }
        results: dict[str, Any] = {}
        for name, data in (("val", self.val), ("test", self.test)):
            if len(data) == 0:
                continue
            ev = self._evaluate(data, info)
            results[name] = {"loss": ev.loss, "metrics": ev.metrics, "n": len(data)}
            if self.env.is_main:
                write_predictions(predictions_file(out, name), ev.predictions)
        record = {
            **self.protocol(),
            "selected_checkpoint": selected,
            "selected_epoch": info["epoch"],
            "best_epoch": self.state["best_epoch"],
            "best_val": self.state["best_value"],
            "epochs_run": self.state["epoch"],
            "stopped_early": bool(self.state["epoch"] < cfg.epochs),
            **results,
            "timings": {
                # all epochs, also those of earlier calls when resumed
                "train_s": float(sum(r.get("seconds") or 0.0 for r in self.history)),
                "this_call_train_s": train_time,
                "eval_s": time.perf_counter() - t0,
                "epoch_s": [r.get("seconds") for r in self.history],
            },
        }
        run_record = supervised_record(jsonable(record))
        if self.env.is_main:
            names = [CONFIG_FILE, TRAINING_LOG, "best.safetensors", "last.safetensors"]
            names += [predictions_file(out, n).name for n in results]
            write_run(out, run_record, names)
        D.barrier(self.env)
        if "test" in results:
            self.log(
                "test " + ", ".join(f"{k}={v:.4f}" for k, v in results["test"]["metrics"].items())
            )
        return TrainResult(out, run_record, self.history)


def _format_row(row: dict[str, Any]) -> str:
    parts = [f"epoch {row['epoch']}", f"loss {row['train_loss']:.4f}"]
    for key in ("val_loss", "val_auroc", "val_accuracy"):
        if key in row and row[key] is not None:
            parts.append(f"{key} {row[key]:.4f}")
    parts.append(f"{row['seconds']:.1f}s")
    return " | ".join(parts)
