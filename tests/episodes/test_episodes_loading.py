"""Episodes as tensors; streams over DataLoader workers and ranks; multi-task episodes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from medimeta import MedIMeta
from medimeta.episodes import (
    EpisodeDataset,
    EpisodeLoader,
    EpisodeSampler,
    EpisodeStream,
    LoadedEpisode,
    MultiTaskEpisodes,
)
from medimeta.errors import EpisodeError


def make(root: Path, task: str, dataset: str = "ep_rgb", **kw: object) -> EpisodeSampler:
    kw = {"shots": 1, "queries": 2, **kw}
    return EpisodeSampler.from_root(root, f"{dataset}:{task}", "train", **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("dataset", "options"),
    [
        ("ep_rgb", {}),
        ("ep_rgb", {"dtype": "uint8"}),
        ("ep_gray", {"channels": 3, "normalize": "imagenet"}),
        ("ep_rgb", {"channels": 1}),
    ],
)
def test_tensors_match_the_dataset(ep_root: Path, dataset: str, options: dict) -> None:
    ep = make(ep_root, "case category", dataset)[4]
    got = EpisodeLoader(**options).load(ep)
    ref = MedIMeta(ep_root, dataset, "case category", **options)  # all samples: position = index
    sx, _ = ref.get_batch(ep.support_indices)
    qx, qy = ref.get_batch(ep.query_indices)
    ulp = 0 if options.get("dtype") == "uint8" else 5e-7  # float: within one float32 ulp
    torch.testing.assert_close(got.support_x, sx, rtol=0, atol=ulp)
    torch.testing.assert_close(got.query_x, qx, rtol=0, atol=ulp)
    assert got.support_x.dtype == sx.dtype and got.support_x.shape == sx.shape
    keys = torch.tensor(ep.class_keys)
    assert torch.equal(keys[got.query_y], qy), "re-indexed labels map back to the task's keys"
    assert got.description.classes == {c.index: c.name for c in ep.classes}
    assert got.description.domain_identifier == ref.task_description.domain_identifier


def test_label_shapes_and_uint8(ep_root: Path) -> None:
    loader = EpisodeLoader(dtype="uint8")
    binary = loader.load(make(ep_root, "Malignancy")[0])
    assert binary.support_y.shape == (2, 1) and binary.support_x.dtype == torch.uint8
    multi = loader.load(make(ep_root, "finding labels")[0])
    assert multi.support_y.shape == (multi.support_x.shape[0], 4)
    sx, sy, qx, qy = multi  # unpacks
    assert sx.shape[1:] == qx.shape[1:] == (3, 224, 224) and sy.dtype == qy.dtype == torch.int64


def test_normalise_after_moving(ep_root: Path) -> None:
    ep = make(ep_root, "case category")[2]
    small = EpisodeLoader(dtype="uint8").load(ep)
    moved = small.to("cpu", normalize="imagenet")
    direct = EpisodeLoader(normalize="imagenet").load(ep)
    for a, b in ((moved.support_x, direct.support_x), (moved.query_x, direct.query_x)):
        torch.testing.assert_close(a, b, rtol=0, atol=5e-7)
    assert torch.equal(moved.query_y, direct.query_y)
    with pytest.raises(EpisodeError, match="uint8"):
        direct.to("cpu", normalize="half")


def test_transform_path(ep_root: Path) -> None:
    def transform(img: object) -> torch.Tensor:
        return torch.from_numpy(np.asarray(img, dtype=np.float32)).permute(2, 0, 1) / 255

    ep = make(ep_root, "case category")[1]
    got = EpisodeLoader(transform=transform).load(ep)
    unit = EpisodeLoader(normalize="unit").load(ep)
    torch.testing.assert_close(got.support_x, unit.support_x.contiguous())


def _keyed(items: list[LoadedEpisode]) -> dict[int, LoadedEpisode]:
    out = {}
    for item in items:
        assert item.index not in out, f"episode {item.index} produced twice"
        out[item.index] = item
    return out


def test_stream_same_with_0_and_2_workers(ep_root: Path) -> None:
    s = make(ep_root, "finding labels", num_episodes=9)
    stream = EpisodeStream(s, EpisodeLoader(dtype="uint8"), rank=0, world_size=1)
    plain = _keyed(list(DataLoader(stream, batch_size=None, num_workers=0)))
    for ctx in ("fork", "spawn"):
        loader = DataLoader(stream, batch_size=None, num_workers=2, multiprocessing_context=ctx)
        workers = _keyed(list(loader))
        assert sorted(plain) == sorted(workers) == list(range(9))
        for i in range(9):
            assert all(torch.equal(a, b) for a, b in zip(plain[i], workers[i], strict=True))
            assert workers[i].episode == s[i]


def test_stream_shards_over_ranks(ep_root: Path) -> None:
    s = make(ep_root, "case category", num_episodes=10)
    seen: list[int] = []
    for rank in range(3):
        stream = EpisodeStream(s, load=False, rank=rank, world_size=3)
        got = [ep.index for ep in DataLoader(stream, batch_size=None, num_workers=2)]
        assert len(got) == len(stream)
        seen += got
    assert sorted(seen) == list(range(10))
    equal = [
        len(EpisodeStream(s, load=False, rank=r, world_size=3, equal_shards=True)) for r in range(3)
    ]
    assert equal == [3, 3, 3]


def test_unbounded_stream_and_start(ep_root: Path) -> None:
    s = make(ep_root, "case category")
    stream = EpisodeStream(s, load=False, start=100, rank=1, world_size=2)
    first = [next(it) for it in [iter(stream)] for _ in range(3)]
    assert [e.index for e in first] == [101, 103, 105]
    with pytest.raises(TypeError):
        len(stream)
    with pytest.raises(EpisodeError, match="bounded"):
        EpisodeDataset(s)


def test_map_style_dataset_in_workers(ep_root: Path) -> None:
    s = make(ep_root, "DR level", num_episodes=4)
    data = EpisodeDataset(s, EpisodeLoader(dtype="uint8"))
    got = list(DataLoader(data, batch_size=None, num_workers=2))
    assert [g.index for g in got] == [0, 1, 2, 3]
    assert torch.equal(got[2].query_x, data[2].query_x)


def test_multitask_episodes(ep_root: Path) -> None:
    samplers = [make(ep_root, "case category"), make(ep_root, "Malignancy", "ep_gray")]
    mix = MultiTaskEpisodes(samplers, seed=4, num_episodes=40)
    tasks = [ep.task_id for ep in mix]
    assert set(tasks) == {"ep_rgb:case category", "ep_gray:Malignancy"}
    assert [mix[i] for i in (7, 3)] == [list(mix)[7], list(mix)[3]]
    assert mix[5] == samplers[mix.task_of(5)][5]
    only_first = MultiTaskEpisodes(samplers, weights=[1.0, 0.0], seed=4)
    assert {only_first[i].task_id for i in range(10)} == {"ep_rgb:case category"}
    with pytest.raises(EpisodeError, match="non-negative"):
        MultiTaskEpisodes(samplers, weights=[1.0])
