"""Helpers of the writer and converter tests: small sources, tree comparison, medimeta 0.0.6."""

from __future__ import annotations

import enum
import glob
import importlib.util
import io
import logging
import os
import sys
import tarfile
import types
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from medimeta.format.writer import SampleRecord

REPO = Path(__file__).resolve().parents[2]


def tree_bytes(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` by relative path (for byte-identity checks)."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def write_image(path: Path, size: tuple[int, int], mode: str, seed: int) -> None:
    """A random image file (format from the suffix)."""
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(path)


def synthetic_image(record: SampleRecord) -> tuple[np.ndarray, dict[str, Any], dict[str, Any]]:
    """Process function: a grey image, a mask and two annotations, all from ``record.source``."""
    rng = np.random.default_rng(int(record.source))
    img = rng.integers(0, 256, (224, 224), dtype=np.uint8)
    return img, {"original_image_size": (300, 200), "score": 0.5}, {"masks": img > 127}


def synthetic_rgb(record: SampleRecord) -> Image.Image:
    rng = np.random.default_rng(int(record.source))
    return Image.fromarray(rng.integers(0, 256, (224, 224, 3), dtype=np.uint8))


def fail_on_marker(record: SampleRecord) -> np.ndarray:
    """Process function that fails for source ``k`` while ``$MEDIMETA_TEST_FAIL_AT == k``."""
    if os.environ.get("MEDIMETA_TEST_FAIL_AT") == str(record.source):
        raise RuntimeError(f"simulated failure at {record.source}")
    return np.full((224, 224), int(record.source) % 256, dtype=np.uint8)


def wrong_size(record: SampleRecord) -> np.ndarray:
    return np.zeros((200, 224), dtype=np.uint8)


def wrong_mode(record: SampleRecord) -> Image.Image:
    return Image.new("RGB", (224, 224))


TASKS = [
    {
        "task_name": "case category",
        "task_target": "MULTICLASS_CLASSIFICATION",
        "labels": {0: "normal", 1: "benign", 2: "malignant"},
    },
    {
        "task_name": "Malignancy",
        "task_target": "BINARY_CLASSIFICATION",
        "labels": {0: "no malignant finding", 1: "malignant finding"},
    },
    {
        "task_name": "finding labels",
        "task_target": "MULTILABEL_CLASSIFICATION",
        "labels": {0: "A", 1: "B", 2: "C"},
    },
    {
        "task_name": "DR level",
        "task_target": "ORDINAL_REGRESSION",
        "labels": {0: "none", 1: "a", 4: "b", 6: "c"},
    },
]


def toy_info(dataset_id: str = "toyw", channels: int = 1) -> dict[str, Any]:
    return {
        "id": dataset_id,
        "name": "Toy written",
        "summary": "Written by the tests.",
        "domain": "Toy domain",
        "tasks": TASKS,
        "input_size": [channels, 224, 224],
        "domain_overlaps": [],
        "subject_overlaps": [],
        "license": "Creative Commons Attribution-ShareAlike 4.0 International (CC BY-SA 4.0)",
    }


def toy_records(n: int = 24, *, patient: bool = True) -> list[SampleRecord]:
    splits = ["train", "train", "val", "test"]
    return [
        SampleRecord(
            source=i,
            labels={
                "case category": i % 3,
                "Malignancy": (i // 3) % 2,
                "finding labels": [i % 2, (i // 2) % 2, 0],
                "DR level": (0, 1, 4, 6)[i % 4],
            },
            split=splits[(i // 2) % 4],
            original_split="train" if i < n - 4 else "test",
            original_filepath=f"raw/case {i}.png",
            patient_id=f"P{i // 2:03d}" if patient else None,
            annotations={"zeta": i, "acquired": "2020-01-01"},
        )
        for i in range(n)
    ]


# -- MedMNIST-style archives ---------------------------------------------------------------


def make_npz(
    path: Path,
    *,
    size: int,
    channels: int,
    counts: tuple[int, int, int],
    label_width: int = 1,
    classes: int = 2,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """A compressed .npz with MedMNIST's six keys; returns the arrays."""
    rng = np.random.default_rng(seed)
    arrays: dict[str, np.ndarray] = {}
    for split, n in zip(("train", "val", "test"), counts, strict=True):
        shape = (n, size, size, 3) if channels == 3 else (n, size, size)
        arrays[f"{split}_images"] = rng.integers(0, 256, shape, dtype=np.uint8)
        high = 2 if label_width > 1 else classes
        arrays[f"{split}_labels"] = rng.integers(0, high, (n, label_width), dtype=np.uint8)
    np.savez_compressed(path, **arrays)
    return arrays


# -- the original loader (medimeta 0.0.6) --------------------------------------------------


def find_original_loader_source() -> str | None:
    """medimeta/medimeta.py of medimeta 0.0.6 from a downloaded wheel or sdist, if any."""
    patterns = [os.environ.get("MEDIMETA_006_DIST", "")]
    patterns += [str(REPO / ".venv" / "medimeta-0.0.6" / "medimeta-0.0.6*")]
    for pattern in filter(None, patterns):
        for dist in sorted(glob.glob(pattern)):
            if dist.endswith(".whl"):
                with zipfile.ZipFile(dist) as zf:
                    return zf.read("medimeta/medimeta.py").decode()
            if dist.endswith(".tar.gz"):
                with tarfile.open(dist) as tf:
                    for member in tf.getmembers():
                        if member.name.endswith("medimeta/medimeta.py"):
                            data = tf.extractfile(member)
                            return data.read().decode() if data else None
    return None


def _torchvision_stub() -> dict[str, types.ModuleType]:
    import torch

    class Compose:
        def __init__(self, steps: list[Any]) -> None:
            self.steps = steps

        def __call__(self, x: Any) -> Any:
            for step in self.steps:
                x = step(x)
            return x

    class Resize:
        def __init__(self, size: Any) -> None:
            self.size = tuple(size)

        def __call__(self, img: Image.Image) -> Image.Image:
            h, w = self.size
            return img if img.size == (w, h) else img.resize((w, h), Image.Resampling.BILINEAR)

    class ToTensor:
        def __call__(self, img: Image.Image) -> Any:
            arr = np.asarray(img, dtype=np.float32) / 255.0
            arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
            return torch.from_numpy(np.ascontiguousarray(arr))

    class Normalize:
        def __init__(self, mean: Any, std: Any) -> None:
            self.mean = torch.tensor(mean).view(-1, 1, 1)
            self.std = torch.tensor(std).view(-1, 1, 1)

        def __call__(self, x: Any) -> Any:
            return (x - self.mean) / self.std

    tv = types.ModuleType("torchvision")
    transforms = types.ModuleType("torchvision.transforms")
    for cls in (Compose, Resize, ToTensor, Normalize):
        setattr(transforms, cls.__name__, cls)
    tv.transforms = transforms  # type: ignore[attr-defined]
    return {"torchvision": tv, "torchvision.transforms": transforms}


def _torchcross_stub() -> dict[str, types.ModuleType]:
    import torch

    class TaskTarget(enum.Enum):
        MULTICLASS_CLASSIFICATION = enum.auto()
        BINARY_CLASSIFICATION = enum.auto()
        MULTILABEL_CLASSIFICATION = enum.auto()
        ORDINAL_REGRESSION = enum.auto()
        REGRESSION = enum.auto()

    @dataclass
    class TaskDescription:
        task_target: Any
        classes: Any = None
        task_identifier: str = ""
        domain_identifier: str = ""

    class TaskSource(torch.utils.data.Dataset):  # type: ignore[type-arg]
        pass

    tc = types.ModuleType("torchcross")
    data = types.ModuleType("torchcross.data")
    data.TaskTarget = TaskTarget  # type: ignore[attr-defined]
    data.TaskDescription = TaskDescription  # type: ignore[attr-defined]
    data.TaskSource = TaskSource  # type: ignore[attr-defined]
    tc.data = data  # type: ignore[attr-defined]
    return {"torchcross": tc, "torchcross.data": data}


@contextmanager
def original_loader(source: str) -> Iterator[Any]:
    """medimeta 0.0.6's ``MedIMeta`` class, loaded under another name with stand-in imports."""
    package = types.ModuleType("medimeta006")
    package.__path__ = []  # type: ignore[attr-defined]
    logger_mod = types.ModuleType("medimeta006.logger")
    logger_mod.logger = logging.getLogger("medimeta006")  # type: ignore[attr-defined]
    stubs = {
        **_torchvision_stub(),
        **_torchcross_stub(),
        "medimeta006": package,
        "medimeta006.logger": logger_mod,
    }
    saved = {name: sys.modules.get(name) for name in [*stubs, "medimeta006.medimeta"]}
    sys.modules.update(stubs)
    try:
        spec = importlib.util.spec_from_loader("medimeta006.medimeta", loader=None)
        assert spec is not None
        module = importlib.util.module_from_spec(spec)
        module.__package__ = "medimeta006"
        sys.modules["medimeta006.medimeta"] = module
        exec(compile(source, "medimeta006/medimeta.py", "exec"), module.__dict__)
        yield module.MedIMeta
    finally:
        for name, old in saved.items():
            if old is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = old


def png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def slow_image(record: SampleRecord) -> np.ndarray:
    """Process function slow enough to be interrupted mid-build (5 ms per image)."""
    import time

    time.sleep(0.005)
    return np.full((224, 224), int(record.source) % 251, dtype=np.uint8)


def slow_records(n: int) -> list[SampleRecord]:
    return [
        SampleRecord(i, {"finding": i % 2}, ("train", "val", "test")[i % 3], "train", f"raw/{i}")
        for i in range(n)
    ]


SLOW_INFO = {
    "id": "killme",
    "name": "Interrupted build",
    "summary": "Built by the signal tests.",
    "domain": "Toy domain",
    "tasks": [
        {
            "task_name": "finding",
            "task_target": "BINARY_CLASSIFICATION",
            "labels": {0: "absent", 1: "present"},
        }
    ],
    "input_size": [1, 224, 224],
    "license": "CC BY 4.0",
}
