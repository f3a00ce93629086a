"""The pixel kernel gives today's pixels on every path, and its buffers never change a tensor
that is still alive.

The reference below is a verbatim copy of the conversion code that the kernel replaced
(``to_uint8_tensor`` and ``Normalizer.normalize_rows`` / ``normalize_uint8`` of
``medimeta.data.pixels`` before the kernel), fed with rows read straight from images.hdf5 by
h5py. Every comparison is exact (``torch.equal``).
"""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset, default_collate

from fixtures.release import ToySpec, ToyTask, make_release_dataset
from medimeta import MedIMeta, MedIMetaMultiTask
from medimeta.data import DeviceNormalize
from medimeta.data.collate import sample_views
from medimeta.data.kernel import POOL
from medimeta.episodes import CrossDomainBatches, EpisodeLoader, EpisodeSampler, EpisodeStream

PRESETS = {
    "half": ((0.5,), (0.5,)),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "unit": ((0.0,), (1.0,)),
}
GRADE = ToyTask("grade", "MULTICLASS_CLASSIFICATION", {0: "a", 1: "b", 2: "c"})
CASES = [
    (ds, ch, dtype, preset)
    for ds in ("px_gray", "px_rgb")
    for ch in (1, 3)
    for dtype, presets in (("uint8", ("half",)), ("float", tuple(PRESETS)))
    for preset in presets
]


# -- the reference: today's conversion code, copied ----------------------------------------------
def _ref_affine(preset: str, channels: int) -> tuple[np.ndarray, np.ndarray]:
    mean, std = PRESETS[preset]
    if len(mean) != channels:
        mean, std = (float(np.mean(mean)),), (float(np.mean(std)),)
    m = np.broadcast_to(np.asarray(mean, dtype=np.float64), (channels,))
    s = np.broadcast_to(np.asarray(std, dtype=np.float64), (channels,))
    return (1.0 / (255.0 * s)).astype(np.float32), (-m / s).astype(np.float32)


def ref_to_uint8_tensor(images: np.ndarray, channels: int) -> torch.Tensor:
    t = torch.from_numpy(images)
    if t.ndim == 3:
        t = t.unsqueeze(1)
        if channels == 3:
            t = t.expand(-1, 3, -1, -1)
        return t
    t = t.permute(0, 3, 1, 2)
    if channels == 1:
        w = torch.tensor([19595, 38470, 7471], dtype=torch.int32).view(1, 3, 1, 1)
        t = ((t.to(torch.int32) * w).sum(1, keepdim=True) + 0x8000) >> 16
        t = t.to(torch.uint8)
    return t


def ref_normalize_rows(images: np.ndarray, preset: str) -> torch.Tensor:
    shape = images.shape[1:]
    scale_a, shift_a = _ref_affine(preset, 1 if len(shape) == 2 else shape[-1])
    out = np.empty(images.shape, dtype=np.float32)
    uniform = bool(np.all(scale_a == scale_a[0]) and np.all(shift_a == shift_a[0]))
    if len(shape) == 2 or uniform:
        scale, shift = scale_a[0], shift_a[0]
    else:
        scale = np.ascontiguousarray(np.broadcast_to(scale_a, shape))
        shift = np.ascontiguousarray(np.broadcast_to(shift_a, shape))
    for pos, row in enumerate(images):
        np.multiply(row, scale, out=out[pos])
        out[pos] += shift
    t = torch.from_numpy(out)
    return t.unsqueeze(1) if len(shape) == 2 else t.permute(0, 3, 1, 2)


def ref_normalize_uint8(x: torch.Tensor, preset: str) -> torch.Tensor:
    scale, shift = _ref_affine(preset, x.shape[1])
    src = x.numpy()
    out = np.empty(src.shape, dtype=np.float32)
    np.multiply(src, scale.reshape(1, -1, 1, 1), out=out)
    out += shift.reshape(1, -1, 1, 1)
    return torch.from_numpy(out)


def reference(folder: Path, rows: np.ndarray, channels: int, dtype: str, preset: str):
    with h5py.File(folder / "images.hdf5", "r") as f:
        images = np.stack([f["images"][int(g)] for g in rows])
    stored = 1 if images.ndim == 3 else 3
    if dtype == "uint8":
        return ref_to_uint8_tensor(images, channels)
    if channels == stored:
        return ref_normalize_rows(images, preset)
    return ref_normalize_uint8(ref_to_uint8_tensor(images, channels), preset)


# -- fixtures -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def px_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pixel-kernel")
    for ds, ch in (("px_gray", 1), ("px_rgb", 3)):
        spec = ToySpec(
            dataset_id=ds, channels=ch, seed=ch, splits={"train": 24, "val": 0, "test": 6}
        )
        spec.tasks = (GRADE,)
        make_release_dataset(root, spec)
    return root


def _dataset(root: Path, ds: str, ch: int, dtype: str, preset: str, **kw) -> MedIMeta:
    return MedIMeta(root, ds, "grade", channels=ch, dtype=dtype, normalize=preset, **kw)


def _same(got: torch.Tensor, ref: torch.Tensor) -> None:
    assert got.dtype == ref.dtype and got.shape == ref.shape
    assert torch.equal(got, ref)


# -- every path against the reference --------------------------------------------------------------
@pytest.mark.parametrize(("ds", "ch", "dtype", "preset"), CASES)
def test_every_path_gives_todays_pixels(px_root: Path, ds: str, ch: int, dtype: str, preset: str):
    data = _dataset(px_root, ds, ch, dtype, preset)
    folder = px_root / ds
    glob = data.split_indices

    def ref(positions: list[int]) -> torch.Tensor:
        return reference(folder, glob[positions], ch, dtype, preset)

    for p in (0, 7, 29):  # ds[i]
        _same(data[p][0], ref([p])[0])
    pos = [5, 0, 17, 5, 29, 3]  # ds[[...]], repeats and random order
    _same(data[pos][0], ref(pos))
    _same(default_collate(data.__getitems__(pos))[0], ref(pos))
    for k, (x, _) in enumerate(DataLoader(data, batch_size=4)):  # __getitems__ + default_collate
        assert type(x) is torch.Tensor and x.is_contiguous()
        _same(x, ref(list(range(4 * k, min(len(data), 4 * k + 4)))))
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(1))
    batches = [order[i : i + 4].tolist() for i in range(0, len(data), 4)]
    for b, (x, _) in zip(batches, data.loader(4, shuffle=True, seed=1), strict=True):
        _same(x, ref(b))
    sampler = EpisodeSampler(folder, "grade", None, shots=2, queries=2, seed=0)
    loader = EpisodeLoader(channels=ch, dtype=dtype, normalize=preset)
    for i in range(2):
        ep = sampler.episode(i)
        sx, _, qx, _ = loader.load(ep)
        _same(sx, reference(folder, ep.support_indices, ch, dtype, preset))
        _same(qx, reference(folder, ep.query_indices, ch, dtype, preset))


@pytest.mark.parametrize("preset", list(PRESETS))
def test_cross_domain_batches_give_todays_pixels(px_root: Path, preset: str) -> None:
    batches = CrossDomainBatches(
        px_root, ["px_gray:grade", "px_rgb:grade"], 4, split=None, normalize=preset, seed=2
    )
    seen = 0
    for batch in batches:
        folder = px_root / batch.task.dataset_id
        _same(batch.x, reference(folder, batch.indices.numpy(), 3, "float", preset))
        seen += len(batch.y)
    assert seen == 60


@pytest.mark.parametrize("backend", ["memmap", "hdf5", "tiff"])
@pytest.mark.parametrize("ch", [1, 3])
def test_backends_give_todays_pixels(px_root: Path, backend: str, ch: int) -> None:
    data = _dataset(px_root, "px_rgb", ch, "float", "imagenet", backend=backend)
    pos = [3, 1, 4, 1, 5]
    _same(
        data[pos][0],
        reference(px_root / "px_rgb", data.split_indices[pos], ch, "float", "imagenet"),
    )
    x, _ = next(iter(DataLoader(data, batch_size=5)))
    _same(x, reference(px_root / "px_rgb", data.split_indices[:5], ch, "float", "imagenet"))


# -- default_collate semantics of the drop-in path -----------------------------------------------
class _PerItem(Dataset):
    """The same dataset without ``__getitems__``: DataLoader's per-item path."""

    def __init__(self, inner: Dataset) -> None:
        self.inner = inner

    def __len__(self) -> int:
        return len(self.inner)  # type: ignore[arg-type]

    def __getitem__(self, i: int):
        return self.inner[i]


def _loader(ds: Dataset, **kw) -> DataLoader:
    return DataLoader(
        ds, batch_size=5, shuffle=True, generator=torch.Generator().manual_seed(4), **kw
    )


def _equal_trees(a, b) -> None:
    assert type(a) is type(b)
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape and a.stride() == b.stride()
        assert torch.equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _equal_trees(a[k], b[k])
    elif isinstance(a, list | tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _equal_trees(x, y)
    else:
        assert a == b


@pytest.mark.parametrize("task", ["case category", "Malignancy", "finding labels", "DR level"])
@pytest.mark.parametrize(
    ("ds", "kw"), [("toy_rgb", {}), ("toy_gray", {"channels": 3, "dtype": "uint8"})]
)
def test_dropin_dataloader_matches_per_item_collate(toy_root: Path, task: str, ds: str, kw: dict):
    data = MedIMeta(toy_root, ds, task, **kw)
    got, want = list(_loader(data)), list(_loader(_PerItem(data)))
    _equal_trees(got, want)


def test_dropin_multitask_matches_per_item_collate(toy_root: Path) -> None:
    data = MedIMetaMultiTask(toy_root, "toy_rgb", metadata=["original_filepath"])
    _equal_trees(list(_loader(data)), list(_loader(_PerItem(data))))


@pytest.mark.parametrize("ctx", ["fork", "spawn"])
def test_dropin_workers_match_main_process(toy_root: Path, ctx: str) -> None:
    data = MedIMeta(toy_root, "toy_rgb", "finding labels")
    want = list(_loader(_PerItem(data)))
    got = list(_loader(data, num_workers=2, multiprocessing_context=ctx))
    _equal_trees(got, want)


def test_sample_views_are_plain_tensors_elsewhere() -> None:
    batch = torch.arange(24, dtype=torch.float32).view(4, 2, 3)
    views = sample_views(batch)
    assert torch.stack(views) is batch  # the one shortcut
    assert type(views[0] + 1) is torch.Tensor and torch.equal(views[2], batch[2])
    _equal_trees(torch.stack(views[::-1]), batch.flip(0))  # not the whole batch in order
    _equal_trees(torch.stack(views[:2]), batch[:2])
    _equal_trees(torch.stack(views, 1), torch.stack([batch[i] for i in range(4)], 1))
    out = torch.empty(0)
    assert torch.stack(views, out=out) is out and torch.equal(out, batch)  # not shared: a copy
    restored = pickle.loads(pickle.dumps(views[1]))
    assert type(restored) is torch.Tensor and torch.equal(restored, batch[1])


def test_worker_style_collate_reuses_a_shared_batch() -> None:
    """What default_collate does in a worker: a storage from the first sample, then stack."""
    batch = torch.arange(24, dtype=torch.float32).view(4, 2, 3).share_memory_()
    views = sample_views(batch)
    storage = views[0]._typed_storage()._new_shared(batch.numel())
    out = views[0].new(storage).resize_(4, 2, 3)
    assert out.data_ptr() == batch.data_ptr()  # no new segment
    assert torch.stack(views, 0, out=out) is batch
    shuffled = views[::-1]  # a custom collate that reorders: computed via a temporary
    storage = shuffled[0]._typed_storage()._new_shared(batch.numel())
    out = shuffled[0].new(storage).resize_(4, 2, 3)
    expected = batch.flip(0).clone()
    assert torch.equal(torch.stack(shuffled, 0, out=out), expected)
    other = shuffled[0]._typed_storage()._new_shared(6)  # another size: a real new storage
    assert other._untyped_storage.data_ptr() != batch.data_ptr()


# -- buffers: reuse never touches a live tensor ----------------------------------------------
def test_pooled_buffers_are_reused_only_when_free(px_root: Path) -> None:
    POOL.clear()
    data = _dataset(px_root, "px_rgb", 3, "float", "half")
    ref = {k: data[[k, k + 1, k + 2]][0].clone() for k in (0, 3, 6)}
    x0 = data[[0, 1, 2]][0]
    view = data[[3, 4, 5]][0][1]  # only a view of the second batch survives
    x6 = data[[6, 7, 8]][0]
    assert len({x0.data_ptr(), view.data_ptr() - view[0].numel() * 4, x6.data_ptr()}) == 3
    for _ in range(6):  # more batches than slots, none may land on a live one
        data[[9, 10, 11]]
    _same(x0, ref[0])
    _same(view, ref[3][1])
    _same(x6, ref[6])
    ptr = x6.data_ptr()
    del x6
    assert any(data[[12, 13, 14]][0].data_ptr() == ptr for _ in range(4))  # freed: reused


@pytest.mark.parametrize("ctx", ["fork", "spawn"])
def test_worker_slots_never_overwrite_held_batches(px_root: Path, ctx: str) -> None:
    data = _dataset(px_root, "px_rgb", 3, "float", "imagenet")
    want = [(x.clone(), y.clone()) for x, y in data.loader(3)]
    loader = data.loader(3, num_workers=2, multiprocessing_context=ctx, persistent_workers=True)
    held = list(loader)  # all ten batches alive at once: more than the workers' slots
    again = [(x.clone(), y.clone()) for x, y in loader]  # second epoch, released as it goes
    for got in (held, again):
        assert len(got) == len(want)
        for (xa, ya), (xb, yb) in zip(got, want, strict=True):
            _same(xa, xb)
            assert torch.equal(ya, yb)


def test_episode_stream_workers_give_todays_pixels(px_root: Path) -> None:
    folder = px_root / "px_rgb"
    sampler = EpisodeSampler(folder, "grade", None, shots=2, queries=2, seed=0)
    stream = EpisodeStream(sampler, EpisodeLoader(), num_episodes=6, rank=0, world_size=1)
    got = list(DataLoader(stream, batch_size=None, num_workers=2))
    assert sorted(e.index for e in got) == list(range(6))
    for e in got:
        _same(e.support_x, reference(folder, e.episode.support_indices, 3, "float", "half"))
        _same(e.query_x, reference(folder, e.episode.query_indices, 3, "float", "half"))


# -- the device-side option (tested on the CPU) ----------------------------------------------
@pytest.mark.parametrize("preset", list(PRESETS))
@pytest.mark.parametrize(
    ("ds", "ch"), [("px_gray", 1), ("px_gray", 3), ("px_rgb", 3), ("px_rgb", 1)]
)
def test_device_normalize_equals_cpu_float_path(px_root: Path, preset: str, ds: str, ch: int):
    u8 = _dataset(px_root, ds, ch, "uint8", preset)
    f32 = _dataset(px_root, ds, ch, "float", preset)
    norm = DeviceNormalize(preset).to("cpu")
    pos = [2, 9, 4]
    x = norm(u8[pos][0])
    assert x.device.type == "cpu" and x.dtype == torch.float32
    torch.testing.assert_close(x, f32[pos][0], atol=1e-6, rtol=0)
    assert torch.equal(x, f32[pos][0])  # the same two roundings: bit for bit
    assert torch.equal(norm(u8[4][0]), f32[4][0])
    with pytest.raises(TypeError, match="uint8"):
        norm(x)


def test_pin_memory_without_accelerator_warns_and_keeps_values(px_root: Path) -> None:
    import medimeta.data.kernel as kernel

    kernel._warned_pin = False
    plain = _dataset(px_root, "px_rgb", 3, "uint8", "half")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pinned = _dataset(px_root, "px_rgb", 3, "uint8", "half", pin_memory=True)
        x = pinned[[1, 2]][0]
    if not kernel._accelerator():
        assert any("no accelerator" in str(w.message) for w in caught)
    _same(x, plain[[1, 2]][0])
