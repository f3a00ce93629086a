"""Episode files: bit-identical reload, fingerprint refusal, edited files, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from episode_toys import make_rgb
from typer.testing import CliRunner

from medimeta.cli.episodes import app
from medimeta.episodes import EpisodeLoader, EpisodeSampler, EpisodeSet
from medimeta.errors import EpisodeError, FormatError

TASKS = ["case category", "Malignancy", "finding labels", "DR level"]


@pytest.fixture
def own_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    make_rgb(root)
    return root


def same_arrays(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("task", TASKS)
def test_reload_is_bit_identical(ep_root: Path, tmp_path: Path, task: str) -> None:
    s = EpisodeSampler.from_root(ep_root, f"ep_rgb:{task}", "train", shots=2, queries=3, seed=11)
    saved = s.sample(12).save(tmp_path / "eps.json")
    loaded = EpisodeSet.load(saved, ep_root)
    assert len(loaded) == 12 and loaded.fingerprint == s.pool.fingerprint
    for a, b in zip(s.sample(12), loaded, strict=True):
        assert a == b
        for name in ("support_indices", "support_labels", "query_indices", "query_labels"):
            assert same_arrays(getattr(a, name), getattr(b, name))
        assert b.folder == ep_root / "ep_rgb"
    assert loaded.settings == s.settings
    # saving the reloaded set again gives the same bytes
    again = loaded.save(tmp_path / "again.json")
    assert again.read_bytes() == saved.read_bytes()


def test_loaded_set_reads_images(ep_root: Path, tmp_path: Path) -> None:
    s = EpisodeSampler.from_root(ep_root, "ep_rgb:case category", "test", shots=1, queries=2)
    path = s.sample(2).save(tmp_path / "e.json")
    unbound = EpisodeSet.load(path)
    with pytest.raises(EpisodeError, match="not bound"):
        EpisodeLoader().load(unbound[0])
    bound = EpisodeSet.load(path, ep_root)
    a, b = EpisodeLoader(dtype="uint8").load(bound[1]), EpisodeLoader(dtype="uint8").load(s[1])
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_tampered_label_array_is_refused(own_root: Path, tmp_path: Path) -> None:
    s = EpisodeSampler.from_root(own_root, "ep_rgb:finding labels", "train", shots=2, queries=2)
    path = s.sample(5).save(tmp_path / "e.json")
    label_file = own_root / "ep_rgb" / "task_labels" / "finding labels.npy"
    labels = np.load(label_file)
    row = int(s.pool.indices[0])
    labels[row, 0] = 1 - labels[row, 0]  # one flipped label inside the split
    np.save(label_file, labels)
    with pytest.raises(EpisodeError) as info:
        EpisodeSet.load(path, own_root)
    text = str(info.value)
    fresh = EpisodeSampler.from_root(own_root, "ep_rgb:finding labels", "train", shots=2, queries=2)
    assert s.pool.fingerprint in text and fresh.pool.fingerprint in text
    assert "medimeta episodes sample" in text


def test_changed_split_is_refused(own_root: Path, tmp_path: Path) -> None:
    s = EpisodeSampler.from_root(own_root, "ep_rgb:case category", "test", shots=1, queries=1)
    path = s.sample(3).save(tmp_path / "e.json")
    # Swap one sample between train and test: the folder stays valid, the test split changes.
    splits = own_root / "ep_rgb" / "splits"
    train, test = (splits / f"{s}.txt" for s in ("train", "test"))
    a, b = train.read_text().split("\n"), test.read_text().split("\n")
    a[0], b[-1] = b[-1], a[0]
    train.write_text("\n".join(a))
    test.write_text("\n".join(b))
    with pytest.raises(EpisodeError, match="fingerprint"):
        EpisodeSet.load(path, own_root)
    # A split file that disagrees with info.yaml is refused before any episode is read.
    test.write_text("\n".join(b[:-1]))
    with pytest.raises(FormatError, match="test.txt: .* lines, info.yaml splits_num_samples.test"):
        EpisodeSet.load(path, own_root)


def test_labels_outside_the_split_do_not_matter(own_root: Path, tmp_path: Path) -> None:
    s = EpisodeSampler.from_root(own_root, "ep_rgb:case category", "test", shots=1, queries=1)
    path = s.sample(3).save(tmp_path / "e.json")
    label_file = own_root / "ep_rgb" / "task_labels" / "case category.npy"
    labels = np.load(label_file)
    outside = int(np.setdiff1d(np.arange(labels.size), s.pool.indices)[0])
    labels[outside] = (labels[outside] + 1) % 3
    np.save(label_file, labels)
    assert len(EpisodeSet.load(path, own_root)) == 3


def test_edited_file_is_refused(ep_root: Path, tmp_path: Path) -> None:
    s = EpisodeSampler.from_root(ep_root, "ep_rgb:case category", "train", shots=1, queries=1)
    path = s.sample(3).save(tmp_path / "e.json")
    data = json.loads(path.read_text())
    data["episodes"][1]["support"][0] += 1
    path.write_text(json.dumps(data))
    with pytest.raises(EpisodeError, match="edited"):
        EpisodeSet.load(path)


def test_not_an_episode_file(tmp_path: Path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text('{"format": "something else"}')
    with pytest.raises(FormatError, match="format"):
        EpisodeSet.load(bad)
    bad.write_text("not json")
    with pytest.raises(FormatError, match="JSON"):
        EpisodeSet.load(bad)
    with pytest.raises(EpisodeError, match="no such"):
        EpisodeSet.load(tmp_path / "missing.json")


def test_subject_episodes_fingerprint_covers_subjects(own_root: Path, tmp_path: Path) -> None:
    kw = dict(shots=1, queries=1, shot_unit="subject")
    s = EpisodeSampler.from_root(own_root, "ep_rgb:case category", None, **kw)  # type: ignore[arg-type]
    path = s.sample(4).save(tmp_path / "e.json")
    assert len(EpisodeSet.load(path, own_root)) == 4
    ann = own_root / "ep_rgb" / "annotations.csv"
    ann.write_text(ann.read_text().replace("S01", "S02"))
    with pytest.raises(EpisodeError, match="fingerprint"):
        EpisodeSet.load(path, own_root)


def test_cli_sample_and_show(ep_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "bus.json"
    runner = CliRunner()
    args = [
        "sample",
        "--root",
        str(ep_root),
        "--task",
        "ep_rgb:DR level",
        "--split",
        "train",
        "--shots",
        "1",
        "--query",
        "2",
        "--episodes",
        "7",
        "--seed",
        "3",
        "--out",
        str(out),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    eps = EpisodeSet.load(out, ep_root)
    direct = EpisodeSampler.from_root(
        ep_root, "ep_rgb:DR level", "train", shots=1, queries=2, seed=3
    )
    assert len(eps) == 7 and list(eps) == [direct[i] for i in range(7)]
    again = runner.invoke(app, args)
    assert isinstance(again.exception, EpisodeError) and "--force" in str(again.exception)
    shown = runner.invoke(app, ["show", str(out), "--root", str(ep_root), "--episode", "2"])
    assert shown.exit_code == 0, shown.output
    text = " ".join(shown.output.split())  # rich wraps long lines
    assert "7 episodes of ep_rgb:DR level" in text and "matches the data" in text
    first = eps[2]
    assert f"{first.support_indices[0]}->{first.support_labels[0]}" in text
