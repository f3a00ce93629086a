"""``MedIMeta`` (drop-in) and ``MedIMetaMultiTask`` behaviour."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from medimeta import MedIMeta, MedIMetaMultiTask
from medimeta.errors import SplitError, UnknownNameError
from medimeta.format.reader import DatasetFolder


def _raw(root: Path, ds: str) -> DatasetFolder:
    return DatasetFolder(root / ds)


def reference_float(arr: np.ndarray) -> torch.Tensor:
    """What medimeta 0.0.6's default transform (ToTensor + Normalize(0.5, 0.5)) yields."""
    t = torch.from_numpy(arr.astype(np.float32) / 255.0)
    t = t.unsqueeze(0) if t.ndim == 2 else t.permute(2, 0, 1)
    return (t - 0.5) / 0.5


@pytest.mark.parametrize("ds", ["toy_gray", "toy_rgb"])
def test_default_sample_matches_original_loader(toy_root: Path, ds: str) -> None:
    data = MedIMeta(toy_root, ds, "case category", split="train")
    folder = _raw(toy_root, ds)
    x, y = data[2]
    g = int(folder.split_indices("train")[2])
    ref = reference_float(folder.image_store("tiff").read(g))
    assert x.dtype == torch.float32 and x.shape == ref.shape
    torch.testing.assert_close(x, ref, atol=1e-6, rtol=0)
    assert y.dtype == torch.int64 and y.shape == () and int(y) == folder.labels("case category")[g]


def test_label_shapes_per_target(toy_root: Path) -> None:
    shapes = {"case category": (), "Malignancy": (1,), "finding labels": (4,), "DR level": ()}
    for task, shape in shapes.items():
        data = MedIMeta(toy_root, "toy_gray", task)
        assert data[0][1].shape == shape
        assert data.labels.shape[1:] == shape
    assert MedIMeta(toy_root, "toy_gray", "Malignancy").labels.shape == (12, 1)


def test_ordinal_raw_keys_and_contiguous_index(toy_root: Path) -> None:
    raw = MedIMeta(toy_root, "toy_gray", "DR level")
    idx = MedIMeta(toy_root, "toy_gray", "DR level", ordinal_labels="index")
    keys = [0, 1, 4, 6, 8, 10]
    assert [keys[i] for i in idx.labels.tolist()] == raw.labels.tolist()
    assert idx.classes == dict(enumerate(["none", "a", "b", "c", "d", "e"]))
    assert raw.classes == {0: "none", 1: "a", 4: "b", 6: "c", 8: "d", 10: "e"}


def test_splits_and_original_splits(toy_root: Path) -> None:
    assert len(MedIMeta(toy_root, "toy_rgb", "Malignancy", split="val")) == 3
    assert len(MedIMeta(toy_root, "toy_rgb", "Malignancy", split=["train", "val"])) == 13
    assert len(MedIMeta(toy_root, "toy_rgb", "Malignancy", original_split="test")) == 5
    assert len(MedIMeta(toy_root, "toy_gray", "Malignancy", split="val")) == 0
    with pytest.raises(SplitError, match="not both"):
        MedIMeta(toy_root, "toy_rgb", "Malignancy", split="val", original_split="test")
    with pytest.raises(UnknownNameError, match="did you mean 'val'"):
        MedIMeta(toy_root, "toy_rgb", "Malignancy", split="vall")


def test_batch_path_equals_single_samples(toy_root: Path) -> None:
    for ds in ("toy_gray", "toy_rgb"):
        data = MedIMeta(toy_root, ds, "finding labels", split="train")
        pos = [4, 0, 7, 4]
        xb, yb = data[pos]
        assert xb.shape == (4, data.num_channels, 224, 224)
        for k, p in enumerate(pos):
            x, y = data[p]
            torch.testing.assert_close(xb[k], x, atol=0, rtol=0)
            assert torch.equal(yb[k], y)
        items = data.__getitems__(pos)
        assert len(items) == 4 and torch.equal(items[2][0], xb[2])


@pytest.mark.parametrize(("ds", "channels"), [("toy_gray", 3), ("toy_rgb", 1)])
def test_channel_policy(toy_root: Path, ds: str, channels: int) -> None:
    data = MedIMeta(toy_root, ds, "Malignancy", channels=channels, dtype="uint8")
    x, _ = data[1]
    assert x.shape == (channels, 224, 224) and x.dtype == torch.uint8
    ref = np.array(data.pil_image(1)).copy()
    ref_t = torch.from_numpy(ref)
    ref_t = ref_t.unsqueeze(0) if ref_t.ndim == 2 else ref_t.permute(2, 0, 1)
    assert torch.equal(x, ref_t)  # identical to PIL's L<->RGB conversion


def test_num_channels_setter_like_original_experiments(toy_root: Path) -> None:
    data = MedIMeta(toy_root, "toy_gray", "Malignancy")
    data.num_channels = 3
    assert data[0][0].shape == (3, 224, 224)


def test_imagenet_and_uint8_outputs(toy_root: Path) -> None:
    data = MedIMeta(toy_root, "toy_rgb", "Malignancy", normalize="imagenet")
    raw = MedIMeta(toy_root, "toy_rgb", "Malignancy", dtype="uint8")
    x, _ = data[[0, 1]]
    u, _ = raw[[0, 1]]
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    torch.testing.assert_close(x, (u.float() / 255 - mean) / std, atol=1e-5, rtol=0)
    with pytest.raises(UnknownNameError, match="normalisation preset"):
        MedIMeta(toy_root, "toy_rgb", "Malignancy", normalize="imgnet")


def test_transform_receives_pil_image(toy_root: Path) -> None:
    seen = []

    def transform(img: object) -> torch.Tensor:
        seen.append(type(img).__name__)
        return torch.zeros(1)

    data = MedIMeta(toy_root, "toy_gray", "Malignancy", transform=transform)
    x, _ = data[0]
    assert seen == ["Image"] and x.shape == (1,)
    xb, yb = data[[0, 1]]
    assert xb.shape == (2, 1) and yb.shape == (2, 1)


def test_tiff_backend_via_use_hdf5_false(toy_root: Path) -> None:
    a = MedIMeta(toy_root, "toy_rgb", "Malignancy", use_hdf5=False)
    b = MedIMeta(toy_root, "toy_rgb", "Malignancy")
    assert a.store.backend == "tiff"
    torch.testing.assert_close(a[[3, 2]][0], b[[3, 2]][0], atol=0, rtol=0)


def test_picklable_close_and_context_manager(toy_root: Path) -> None:
    with MedIMeta(toy_root, "toy_rgb", "Malignancy") as data:
        x0 = data[0][0]
        clone = pickle.loads(pickle.dumps(data))
        torch.testing.assert_close(clone[0][0], x0, atol=0, rtol=0)
    assert data.store._array is None
    torch.testing.assert_close(data[0][0], x0, atol=0, rtol=0)  # reopens on demand


def test_class_helpers_and_description(toy_root: Path) -> None:
    assert MedIMeta.get_available_datasets(toy_root) == ["toy_gray", "toy_rgb"]
    tasks = MedIMeta.get_available_tasks(toy_root)
    assert tasks["toy_gray"] == ["case category", "Malignancy", "finding labels", "DR level"]
    assert MedIMeta.get_info_dict(toy_root, "toy_rgb")["input_size"] == [3, 224, 224]
    d = MedIMeta(toy_root, "toy_rgb", "DR level").task_description
    assert d.task_identifier == "Toy Dataset: DR level" and d.domain_identifier == "Toy domain"
    assert d.task_target.value == "ORDINAL_REGRESSION"


def test_root_from_environment(toy_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDIMETA_ROOT", str(toy_root))
    assert len(MedIMeta(None, "toy_gray", "Malignancy")) == 12


def test_loader_yields_seeded_batches(toy_root: Path) -> None:
    data = MedIMeta(toy_root, "toy_rgb", "case category", dtype="uint8")
    a = [y.tolist() for _, y in data.loader(4, shuffle=True, seed=7)]
    b = [y.tolist() for _, y in data.loader(4, shuffle=True, seed=7)]
    assert a == b and sum(len(y) for y in a) == len(data)
    assert sorted(v for y in a for v in y) == sorted(data.labels.tolist())


def test_multitask_view(toy_root: Path) -> None:
    mt = MedIMetaMultiTask(toy_root, "toy_rgb", split="test", metadata=["original_image_size"])
    single = MedIMeta(toy_root, "toy_rgb", "finding labels", split="test")
    s = mt[1]
    assert set(s["labels"]) == {"case category", "Malignancy", "finding labels", "DR level"}
    torch.testing.assert_close(s["image"], single[1][0], atol=0, rtol=0)
    assert torch.equal(s["labels"]["finding labels"], single[1][1])
    assert s["index"] == int(single.split_indices[1]) and s["dataset"] == "toy_rgb"
    assert s["metadata"] == {"original_image_size": "(300, 200)"}
    assert s["subject"] == f"P{s['index'] // 2:03d}"
    b = mt[[0, 1]]
    assert b["image"].shape == (2, 3, 224, 224) and b["labels"]["Malignancy"].shape == (2, 1)
    assert b["subject"][1] == s["subject"]
    sel = MedIMetaMultiTask(toy_root, "toy_rgb", tasks=["DR level"], ordinal_labels="index")
    assert list(sel[0]["labels"]) == ["DR level"] and int(sel[0]["labels"]["DR level"]) < 6
