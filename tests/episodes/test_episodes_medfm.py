"""MedFM's own few-shot lists -> episode files: line-for-line support, duplicates, checks."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from medfm_toys import list_names, make_medfmc

from medimeta.episodes import EpisodeLoader, EpisodeSampler, EpisodeSet
from medimeta.episodes.medfm import MissingValListWarning, ValOverlapWarning, import_medfm
from medimeta.errors import EpisodeError, FormatError, LabelError, SourceTreeError
from medimeta.format.reader import DatasetFolder

KEYS = ("chest", "endo", "colon")


@pytest.fixture(scope="module")
def medfm(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Root with medfmc_chest / _endo / _colon and each dataset's lists folder."""
    base = tmp_path_factory.mktemp("medfm")
    out = {key: make_medfmc(base / "src", base / "root", key) for key in KEYS}
    return {"root": base / "root", **out}


def _names(root: Path, key: str, rows: np.ndarray) -> list[str]:
    frame = DatasetFolder(root / f"medfmc_{key}").annotations
    paths = frame["original_filepath"].tolist()
    return [paths[int(i)].split("/", 1)[1] for i in rows]


@pytest.mark.parametrize("key", KEYS)
def test_five_shot_import_reproduces_the_lists_line_for_line(
    medfm: dict[str, Path], tmp_path: Path, key: str
) -> None:
    lists, root = medfm[key], medfm["root"]
    done = import_medfm(lists, root, f"medfmc_{key}", tmp_path, shots=[5])
    assert [(d.shots, d.experiment) for d in done] == [(5, 1), (5, 2)]
    for d in done:
        assert d.path.name == f"{key}_5-shot_exp{d.experiment}.json"
        eps = EpisodeSet.load(d.path, root)  # with every check against the data
        (ep,) = eps
        train = lists / f"{key}_5-shot_train_exp{d.experiment}.txt"
        val = lists / f"{key}_5-shot_val_exp{d.experiment}.txt"
        expected = list_names(train, key)
        assert _names(root, key, ep.support_indices) == expected  # in order, repeats kept
        assert _names(root, key, ep.query_indices) == list_names(lists / "test_WithLabel.txt", key)
        protocol = eps.header["protocol"]
        assert _names(root, key, np.array(protocol["val_indices"])) == list_names(val, key)
        assert d.lines == len(expected) and d.unique == len(set(expected))
        assert protocol["duplicates"] == d.duplicates == len(expected) - len(set(expected))
        assert d.val == len(list_names(val, key)) and d.test == ep.query_indices.size
        digest = hashlib.sha256(train.read_bytes()).hexdigest()
        assert protocol["lists"]["train"] == {"file": train.name, "sha256": digest,
                                              "lines": len(expected)}  # fmt: skip
        assert (protocol["dataset"], protocol["shots"], protocol["experiment"]) == (
            key, 5, d.experiment
        )  # fmt: skip
        folder = DatasetFolder(root / f"medfmc_{key}")
        data = folder.labels(eps.header["task"]["name"])
        assert np.array_equal(ep.support_labels, data[ep.support_indices])
    if key == "chest":  # a multi-label list names an image once per class it was drawn for
        assert all(d.duplicates > 0 for d in done)
        rows = ep.support_indices.tolist()
        first = next(i for i, r in enumerate(rows) if rows.index(r) != i)
        loaded = EpisodeLoader(dtype="uint8").load(ep)  # repeated lines are repeated samples
        assert loaded.support_x.shape[0] == len(rows)
        assert torch.equal(loaded.support_x[first], loaded.support_x[rows.index(rows[first])])
    if key == "colon":  # a shot is a slide: all its patches of that label
        assert all(d.duplicates == 0 and d.lines == 20 for d in done)


def _tampered(path: Path, tmp: Path, change: object, rehash: bool = True) -> Path:
    data = json.loads(path.read_text())
    change(data)  # type: ignore[operator]
    if rehash:
        text = json.dumps(data["episodes"], sort_keys=True, separators=(",", ":"))
        data["episodes_sha256"] = hashlib.sha256(text.encode()).hexdigest()
    out = tmp / f"tampered_{len(list(tmp.glob('tampered_*')))}.json"
    out.write_text(json.dumps(data))
    return out


def test_tampered_imported_files_are_refused(medfm: dict[str, Path], tmp_path: Path) -> None:
    root = medfm["root"]
    (d,) = import_medfm(medfm["chest"], root, "medfmc_chest", tmp_path, shots=[5], experiments=[1])
    eps = EpisodeSet.load(d.path, root)
    again = eps.save(tmp_path / "again.json")
    assert again.read_bytes() == d.path.read_bytes()  # reload + save gives the same bytes
    (ep,) = eps
    test_row = int(ep.query_indices[0])

    def edit_record(data: dict) -> None:  # one more repeated support line
        record = data["episodes"][0]
        record["support"].append(record["support"][0])
        record["support_labels"].append(record["support_labels"][0])

    with pytest.raises(EpisodeError, match="do not match their recorded sha256"):
        EpisodeSet.load(_tampered(d.path, tmp_path, edit_record, rehash=False))
    # support and duplicates count must agree (the counts rules are skipped, this one is not)
    with pytest.raises(EpisodeError, match=r"support repeats \d+ rows; expected \d+ \(protocol"):
        EpisodeSet.load(_tampered(d.path, tmp_path, edit_record))

    def support_from_test(data: dict) -> None:
        record = data["episodes"][0]
        record["support"][-1] = test_row
        record["support_labels"][-1] = record["query_labels"][0]
        record["query"], record["query_labels"] = record["query"][1:], record["query_labels"][1:]
        support = record["support"]  # a careful editor also fixes the repeat count
        data["protocol"]["duplicates"] = len(support) - len(set(support))

    path = _tampered(d.path, tmp_path, support_from_test)
    EpisodeSet.load(path)  # consistent in itself ...
    with pytest.raises(EpisodeError, match="outside original split train"):
        EpisodeSet.load(path, root)  # ... but not with the data

    def val_in_support(data: dict) -> None:
        data["protocol"]["val_indices"][0] = data["episodes"][0]["support"][0]

    with pytest.raises(EpisodeError, match="val_indices .* are in the support"):
        EpisodeSet.load(_tampered(d.path, tmp_path, val_in_support), root)

    def wrong_label(data: dict) -> None:
        row = data["episodes"][0]["support_labels"][0]
        row[0] = 1 - row[0]

    with pytest.raises(EpisodeError, match=r"support\[0\] .* recorded with label"):
        EpisodeSet.load(_tampered(d.path, tmp_path, wrong_label), root)
    with pytest.raises(EpisodeError, match="lists samples .* more than once"):
        EpisodeSet.load(_tampered(d.path, tmp_path, lambda data: data.pop("protocol")))
    with pytest.raises(FormatError, match="protocol name"):
        EpisodeSet.load(_tampered(d.path, tmp_path, lambda data: data["protocol"].update(name="x")))


def test_sampled_files_are_written_as_before(ep_root: Path, tmp_path: Path) -> None:
    sampler = EpisodeSampler.from_root(ep_root, "ep_rgb:finding labels", "train", shots=2,
                                       queries=2, seed=3)  # fmt: skip
    eps = sampler.sample(3)
    text = eps.save(tmp_path / "s.json").read_text()
    records = [ep.to_record() for ep in eps]
    digest = hashlib.sha256(
        json.dumps(records, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    header = {**eps.header, "num_episodes": 3, "episodes_sha256": digest}
    head = json.dumps(header, indent=2, ensure_ascii=False)
    body = ",\n".join("    " + json.dumps(r, separators=(",", ":")) for r in records)
    assert text == f'{head[:-2]},\n  "episodes": [\n{body}\n  ]\n}}\n'  # the layout of v1
    assert "protocol" not in json.loads(text)
    assert EpisodeSet.load(tmp_path / "s.json", ep_root)[0] == eps[0]


def _copy(lists: Path, tmp: Path) -> Path:
    out = tmp / lists.name
    shutil.copytree(lists, out, ignore=shutil.ignore_patterns("images"))
    return out


def _edit_line(path: Path, number: int, new: str) -> None:
    lines = path.read_text().splitlines()
    lines[number - 1] = new
    path.write_text("".join(line + "\n" for line in lines))


def test_names_labels_and_splits_that_do_not_match_are_errors(
    medfm: dict[str, Path], tmp_path: Path
) -> None:
    root, lists = medfm["root"], _copy(medfm["colon"], tmp_path)
    train = lists / "colon_1-shot_train_exp1.txt"
    original = train.read_text()
    name, label = original.splitlines()[1].rsplit(None, 1)
    _edit_line(train, 2, f"{name} {1 - int(label)}")
    pattern = rf"{train}:2: '{name}' has label {1 - int(label)} in the list but {label}"
    with pytest.raises(LabelError, match=pattern):
        import_medfm(lists, root, "medfmc_colon", tmp_path / "o", shots=[1], experiments=[1])
    _edit_line(train, 2, f"slide Q x_0001.png {label}")
    with pytest.raises(EpisodeError, match=rf"{train}:2: 'slide Q x_0001.png' is not in dataset"):
        import_medfm(lists, root, "medfmc_colon", tmp_path / "o", shots=[1], experiments=[1])
    test_line = (lists / "test_WithLabel.txt").read_text().splitlines()[0]
    _edit_line(train, 2, test_line)
    with pytest.raises(EpisodeError, match=r":2: .* original split 'test'"):
        import_medfm(lists, root, "medfmc_colon", tmp_path / "o", shots=[1], experiments=[1])
    train.write_text(original)
    val = lists / "colon_1-shot_val_exp1.txt"
    val.write_text(original.splitlines()[0] + "\n" + val.read_text())
    # MedFM's published val lists hold support images: imported as published, recorded, said
    with pytest.warns(ValOverlapWarning, match=r"colon: 1 of 1 official val lists share"):
        (d,) = import_medfm(lists, root, "medfmc_colon", tmp_path / "v", shots=[1], experiments=[1])
    eps = EpisodeSet.load(d.path, root)
    val_indices = set(eps.header["protocol"]["val_indices"])
    shared = sorted(val_indices & set(eps[0].support_indices.tolist()))
    assert d.overlap == 1 and eps.header["protocol"]["val_overlap"] == shared and len(shared) == 1
    val.unlink()
    with pytest.warns(MissingValListWarning, match="without validation indices"):
        (d,) = import_medfm(lists, root, "medfmc_colon", tmp_path / "o", shots=[1], experiments=[1])
    assert (
        d.val is None and EpisodeSet.load(d.path, root).header["protocol"]["lists"]["val"] is None
    )
    (lists / "test_WithLabel.txt").unlink()
    with pytest.raises(SourceTreeError, match="test list is missing"):
        import_medfm(lists, root, "medfmc_colon", tmp_path / "o", force=True)
    assert not (tmp_path / "o" / "colon_5-shot_exp1.json").exists()  # nothing half-written


def test_selection_output_and_dataset_errors(
    medfm: dict[str, Path], ep_root: Path, tmp_path: Path
) -> None:
    root, lists = medfm["root"], medfm["endo"]
    with pytest.raises(SourceTreeError, match=r"endo_10-shot_train_exp1.txt .*present for endo"):
        import_medfm(lists, root, "medfmc_endo", tmp_path, shots=[10], experiments=[1])
    with pytest.raises(SourceTreeError, match=r"other datasets: \['endo'\]"):
        import_medfm(lists, root, "medfmc_colon", tmp_path)
    with pytest.raises(EpisodeError, match="names one file but 4 lists"):
        import_medfm(lists, root, "medfmc_endo", tmp_path / "one.json")
    (d,) = import_medfm(lists, root, "medfmc_endo", tmp_path / "one.json", shots=[1],
                        experiments=[2])  # fmt: skip
    assert d.path == tmp_path / "one.json" and d.experiment == 2
    with pytest.raises(EpisodeError, match="exists; pass --force"):
        import_medfm(lists, root, "medfmc_endo", tmp_path / "one.json", shots=[1], experiments=[2])
    with pytest.raises(EpisodeError, match="not a MedFMC dataset converted by medimeta"):
        import_medfm(lists, ep_root, "ep_rgb", tmp_path)
