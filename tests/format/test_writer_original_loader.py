"""The original loader (medimeta 0.0.6, mimeta-pytorch) reads what our writer writes.

Nothing is installed at test time: the test reads ``medimeta/medimeta.py`` from a downloaded
0.0.6 wheel or sdist (``pip download --no-deps medimeta==0.0.6 -d .venv/medimeta-0.0.6``, or
``$MEDIMETA_006_DIST``) and runs it with small stand-ins for torchvision's transforms and
torchcross' data classes. Skipped when no copy is there.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fixtures.writing import (
    find_original_loader_source,
    original_loader,
    synthetic_image,
    synthetic_rgb,
    toy_info,
    toy_records,
)
from medimeta.format.reader import DatasetFolder
from medimeta.format.writer import write_dataset

SOURCE = find_original_loader_source()
pytestmark = pytest.mark.skipif(
    SOURCE is None,
    reason="medimeta 0.0.6 not downloaded (pip download --no-deps medimeta==0.0.6 "
    "-d .venv/medimeta-0.0.6)",
)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("written-for-0.0.6")
    write_dataset(root, toy_info("grey"), toy_records(24), synthetic_image)
    write_dataset(
        root,
        toy_info("colour", channels=3),
        toy_records(12, patient=False),
        synthetic_rgb,
        workers=2,
    )
    return root


@pytest.mark.parametrize("dataset_id", ["grey", "colour"])
def test_original_loader_reads_labels_splits_and_pixels(root: Path, dataset_id: str) -> None:
    assert SOURCE is not None
    folder = DatasetFolder(root / dataset_id)
    store = folder.image_store()
    with original_loader(SOURCE) as medimeta006:
        assert sorted(medimeta006.get_available_datasets(str(root))) == ["colour", "grey"]
        for task in folder.spec.tasks:
            for split in ("train", "val", "test"):
                ds = medimeta006(str(root), dataset_id, task.name, split=split)
                ours = folder.split_indices(split)
                assert ds.split_indices == ours.tolist()
                expected = folder.labels(task.name)[ours]
                if task.target.short == "binary":
                    expected = expected[:, None]
                assert np.array_equal(ds.labels, expected)
                image, label = ds[len(ds) - 1]
                pixels = store.read(int(ours[-1])).astype(np.float32) / 255.0
                pixels = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
                assert torch.allclose(image, torch.from_numpy((pixels - 0.5) / 0.5))
                assert torch.equal(label, torch.as_tensor(expected[-1]))
        originals = medimeta006(
            str(root),
            dataset_id,
            folder.spec.tasks[0].name,
            original_split=["train", "test"],
            use_hdf5=False,
        )
        assert len(originals) == folder.num_samples
        image, _ = originals[3]
        pixels = store.read(3).astype(np.float32) / 255.0
        pixels = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
        assert torch.allclose(image, torch.from_numpy((pixels - 0.5) / 0.5))
