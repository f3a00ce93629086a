"""MedFM's own few-shot lists -> episode files, one per shot count N and experiment K.

openmedlab/MedFM ships, per dataset (``data_anns/MedFMC/<ds>/``), ``<ds>_<N>-shot_train_exp<K>.txt``
(the support), ``<ds>_<N>-shot_val_exp<K>.txt`` (up to 3,000 other trainval images, for model
selection) and ``test_WithLabel.txt`` (the fixed test set), in the line format of
:mod:`medimeta.convert.medfmc`. :func:`import_medfm` maps every line to its sample of a
dataset converted by ``medimeta convert medfmc`` and writes one :class:`EpisodeSet` per (N, K)
with ONE episode: support = the train list's lines in order, query = the test list; the val
list's indices and the lists' sha256 go in the header's ``protocol`` block.

Multi-label lists name an image once per class it was drawn for, so train lists repeat lines
(chest 10-shot exp1: 190 lines, 170 images). MedFM's datasets load every line as a sample, so
repeats are trained on as repeated samples; they are kept here too and counted
(``protocol.duplicates``). A train list without its val list is imported with a warning
(``lists.val`` null, no val indices): our runner does not use it, the protocol record says it
is missing. MedFM's published val lists of chest and endo hold images of the support of the
same experiment; such a list is imported as published, the shared images are recorded
(``protocol.val_overlap``: their indices) and one :class:`ValOverlapWarning` per import says
how many lists and images share. Errors name ``list:line``: a name not in the dataset, a
label that differs from the data's, a train/val name outside trainval or a test name outside
the test list, a test line listed twice; a train or test list without a single line, a
missing test list and a dataset that is not a converted MedFMC dataset are errors too.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medimeta._version import __version__
from medimeta.convert.medfmc import MEDFMC, MedFMCInfo, parse_line, read_list
from medimeta.episodes.episode import Episode, EpisodeClass
from medimeta.episodes.fileio import FINGERPRINT_COVERS, FORMAT, VERSION, EpisodeSet
from medimeta.episodes.pool import TaskPool
from medimeta.episodes.settings import EpisodeSettings
from medimeta.errors import EpisodeError, LabelError, SourceTreeError
from medimeta.format.reader import DatasetFolder, locate_dataset

PROTOCOL = "medfm"
TEST_LIST = "test_WithLabel.txt"
LIST_NAME = re.compile(
    r"^(?P<ds>[a-z]+)_(?P<shots>\d+)-shot_(?P<part>train|val)_exp(?P<exp>\d+)\.txt$"
)


class MissingValListWarning(UserWarning):
    """A MedFM train list has no val list beside it (imported without validation indices)."""


class ValOverlapWarning(UserWarning):
    """MedFM's val lists share images with the support (imported as published, recorded)."""


@dataclass(frozen=True)
class ImportedList:
    """One written episode file and what it holds."""

    path: Path
    shots: int
    experiment: int
    lines: int  # support lines, repeats included
    unique: int  # distinct support images
    duplicates: int  # lines - unique
    val: int | None  # val indices (None: no val list)
    test: int  # query (test list) size
    overlap: int = 0  # distinct val images that are in the support too


@dataclass(frozen=True)
class ParsedList:
    """The global indices of a list's lines in order, with the list's facts."""

    path: Path
    indices: np.ndarray
    where: list[str]  # "list:line (name)" per index
    sha256: str

    def record(self) -> dict[str, Any]:
        return {"file": self.path.name, "sha256": self.sha256, "lines": int(self.indices.size)}


def medfmc_key(folder: DatasetFolder) -> str:
    """The MedFMC dataset key (chest, endo, colon) of a folder written by ``convert medfmc``."""
    origin = folder.info.get("converted_from")
    key = origin.get("dataset") if isinstance(origin, dict) else None
    if not isinstance(origin, dict) or origin.get("kind") != "medfmc" or key not in MEDFMC:
        raise EpisodeError(
            f"{folder.info_path}: dataset {folder.id!r} is not a MedFMC dataset converted by "
            f"medimeta (converted_from {origin!r}; expected kind 'medfmc' and dataset one of "
            f"{sorted(MEDFMC)}); fix: convert it with `medimeta convert medfmc`"
        )
    return str(key)


class NameIndex:
    """List file names -> global sample indices, labels and original splits of a dataset."""

    def __init__(self, folder: DatasetFolder, info: MedFMCInfo) -> None:
        self.folder, self.info = folder, info
        frame = folder.annotations
        self.labels = folder.labels(info.task_name)
        self.splits = frame["original_split"].astype(str).to_numpy()
        self.by_name: dict[str, int] = {}
        for i, path in enumerate(frame["original_filepath"].astype(str)):
            self.by_name[path] = i
            self.by_name.setdefault(path.split("/", 1)[-1], i)  # without "images/"

    def parse(self, path: Path, split: str, split_role: str = "") -> ParsedList:
        """The list's lines as global indices; every name, split and label checked
        (``split_role``: train, val or test; a train or test list must hold lines)."""
        rows: list[int] = []
        where: list[str] = []
        for number, text in enumerate(read_list(path), 1):
            if not text.strip():
                continue
            at = f"{path}:{number}"
            name, label = parse_line(self.info, text, at)
            index = self.by_name.get(name)
            if index is None:
                raise EpisodeError(
                    f"{at}: {name!r} is not in dataset {self.folder.id!r} ({self.folder.path}); "
                    f"the lists must belong to the MedFMC folder that was converted; fix: "
                    f"convert the matching folder, or use the lists shipped with it"
                )
            if self.splits[index] != split:
                raise EpisodeError(
                    f"{at}: {name!r} is in original split {self.splits[index]!r} of "
                    f"{self.folder.id!r}; a {path.name} name must be in {split!r} "
                    f"({'trainval.txt' if split == 'train' else TEST_LIST})"
                )
            stored = self.labels[index].tolist()
            if stored != label:
                raise LabelError(
                    f"{at}: {name!r} has label {label} in the list but {stored} in dataset "
                    f"{self.folder.id!r}; fix: use the lists and the data of the same release"
                )
            rows.append(index)
            where.append(f"{at} ({name})")
        if not rows and split_role != "val":
            role = "support" if split_role == "train" else "query"
            raise EpisodeError(
                f"{path}: no list lines (empty, or blank lines only); the {role} of an "
                f"experiment cannot be empty; fix: copy the file again from MedFM's "
                f"data_anns/MedFMC folder"
            )
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        return ParsedList(path, np.asarray(rows, dtype=np.int64), where, digest)


def find_lists(
    lists_dir: Path,
    key: str,
    shots: list[int] | None = None,
    experiments: list[int] | None = None,
) -> dict[tuple[int, int], dict[str, Path]]:
    """``{(N, K): {"train": path, "val": path (if present)}}`` of the selected lists."""
    found: dict[tuple[int, int], dict[str, Path]] = {}
    others: set[str] = set()
    for path in sorted(lists_dir.glob("*.txt")):
        match = LIST_NAME.match(path.name)
        if match is None:
            continue
        if match["ds"] != key:
            others.add(match["ds"])
            continue
        pair = (int(match["shots"]), int(match["exp"]))
        found.setdefault(pair, {})[match["part"]] = path
    for pair, parts in sorted(found.items()):
        if "train" not in parts:
            warnings.warn(
                f"{parts['val']}: val list without its train list; ignored",
                MissingValListWarning,
                stacklevel=2,
            )
            del found[pair]
    wanted = sorted(
        p
        for p in found
        if (shots is None or p[0] in shots) and (experiments is None or p[1] in experiments)
    )
    missing = [(n, k) for n in shots or [] for k in experiments or [] if (n, k) not in found]
    if missing or not wanted:
        present = ", ".join(f"{n}-shot exp{k}" for n, k in sorted(found)) or "none"
        lacking = ", ".join(f"{key}_{n}-shot_train_exp{k}.txt" for n, k in missing)
        raise SourceTreeError(
            f"{lists_dir}: no MedFM list {lacking or f'{key}_<N>-shot_train_exp<K>.txt'} "
            f"(present for {key}: {present}"
            + (f"; lists of other datasets: {sorted(others)}" if others else "")
            + "); fix: point LISTS_DIR at MedFM's data_anns/MedFMC/<ds> folder or change "
            "--shots / --exp"
        )
    return {p: found[p] for p in wanted}


def _header(pool: TaskPool, shots: int, protocol: dict[str, Any]) -> dict[str, Any]:
    spec = pool.folder.spec
    return {
        "format": FORMAT,
        "version": VERSION,
        "dataset": {"id": spec.id, "name": spec.name, "domain": spec.domain},
        "task": {
            "name": pool.task.name,
            "identifier": pool.identifier,
            "target": pool.target.value,
            "labels": {str(k): v for k, v in pool.task.labels.items()},
        },
        "split": list(pool.split or ()),
        "original_split": pool.original_split,
        "split_label": pool.split_label,
        "seed": 0,  # MedFM drew its lists unseeded; the lists are the reference
        # shots is MedFM's nominal N (a study per class), not a count the support satisfies;
        # queries 0: the query is the whole test list
        "settings": EpisodeSettings(shots=shots, queries=0).to_dict(),
        "eligible_classes": list(pool.class_keys),
        "excluded_classes": {},
        "fingerprint": {
            "algorithm": "sha256",
            "value": pool.fingerprint,
            "covers": FINGERPRINT_COVERS,
        },
        "num_episodes": 1,
        "created_with": {"medimeta": __version__, "numpy": np.__version__},
        "protocol": protocol,
    }


def medfm_episode_set(
    pool: TaskPool,
    key: str,
    shots: int,
    experiment: int,
    train: ParsedList,
    val: ParsedList | None,
    test: ParsedList,
) -> EpisodeSet:
    """The one-episode set of MedFM's ``shots``-shot experiment ``experiment``."""
    support, query = train.indices, test.indices
    overlap = _check_test_and_val(train, val, test)
    unique = int(np.unique(support).size)
    protocol = {
        "name": PROTOCOL,
        "dataset": key,
        "shots": shots,
        "experiment": experiment,
        "lists": {"train": train.record(), "val": val and val.record(), "test": test.record()},
        "unique": unique,
        "duplicates": int(support.size) - unique,
        "val_indices": [] if val is None else val.indices.tolist(),
        "val_overlap": overlap,
    }
    keys = pool.class_keys
    labels = pool.all_labels
    if labels.ndim == 2:  # multi-label: every label, in key order (as filecheck compares)
        labels = labels[:, [pool.task.key_to_index(k) for k in keys]]
    episode = Episode(
        index=0,
        seed=0,
        dataset_id=pool.folder.id,
        task_name=pool.task.name,
        task_target=pool.target,
        domain=pool.folder.spec.domain,
        split=pool.split_label,
        classes=tuple(EpisodeClass(i, k, pool.class_name(k)) for i, k in enumerate(keys)),
        support_indices=support,
        support_labels=labels[support],
        query_indices=query,
        query_labels=labels[query],
        dataset_name=pool.folder.spec.name,
    )
    return EpisodeSet(_header(pool, shots, protocol), [episode])


def _check_test_and_val(train: ParsedList, val: ParsedList | None, test: ParsedList) -> list[int]:
    """EpisodeError for a test line listed twice; the val indices that are in the support
    too (sorted, each once: MedFM's published val lists hold some)."""
    seen: dict[int, str] = {}
    for index, where in zip(test.indices.tolist(), test.where, strict=True):
        if index in seen:
            raise EpisodeError(
                f"{where}: listed again (first at {seen[index]}); MedFM would score it twice; "
                f"fix: remove the repeated line from {test.path.name}"
            )
        seen[index] = where
    if val is None:
        return []
    return sorted(set(val.indices.tolist()) & set(train.indices.tolist()))


def output_paths(
    out: Path, key: str, pairs: list[tuple[int, int]], force: bool
) -> dict[tuple[int, int], Path]:
    """``out/<ds>_<N>-shot_exp<K>.json`` per pair, or ``out`` itself when it ends in .json
    (one pair only); EpisodeError for an existing file without ``force``."""
    if out.suffix == ".json":
        if len(pairs) != 1:
            raise EpisodeError(
                f"--out {out} names one file but {len(pairs)} lists are selected "
                f"({', '.join(f'{n}-shot exp{k}' for n, k in pairs)}); fix: pass a folder, or "
                f"select one with --shots N --exp K"
            )
        paths = {pairs[0]: out}
    else:
        paths = {(n, k): out / f"{key}_{n}-shot_exp{k}.json" for n, k in pairs}
    taken = [str(p) for p in paths.values() if p.exists()]
    if taken and not force:
        raise EpisodeError(f"{', '.join(taken)} exists; pass --force to overwrite")
    return paths


def import_medfm(
    lists_dir: str | Path,
    root: str | Path,
    dataset_id: str,
    out: str | Path,
    *,
    shots: list[int] | None = None,
    experiments: list[int] | None = None,
    force: bool = False,
) -> list[ImportedList]:
    """Write one episode file per selected (N, K) of MedFM's lists in ``lists_dir`` over the
    converted MedFMC dataset ``dataset_id`` of ``root`` (module docstring); each file is
    reloaded and checked against the data before it is reported."""
    lists = Path(lists_dir)
    where = locate_dataset(root, dataset_id)
    folder = DatasetFolder(where)
    key = medfmc_key(folder)
    found = find_lists(lists, key, shots, experiments)
    test_path = lists / TEST_LIST
    if not test_path.is_file():
        raise SourceTreeError(
            f"{test_path}: MedFM's test list is missing (the query of every experiment); fix: "
            f"copy {TEST_LIST} of the same release next to the few-shot lists"
        )
    paths = output_paths(Path(out), key, sorted(found), force)
    names = NameIndex(folder, MEDFMC[key])
    test = names.parse(test_path, "test", "test")
    pool = TaskPool(folder, MEDFMC[key].task_name, ["train", "test"], original_split=True)
    made = []  # every list is read and checked before the first file is written
    for (n, k), parts in sorted(found.items()):
        train = names.parse(parts["train"], "train", "train")
        val = names.parse(parts["val"], "train", "val") if "val" in parts else None
        if val is None:
            warnings.warn(
                f"{parts['train']}: no {key}_{n}-shot_val_exp{k}.txt beside it; imported "
                f"without validation indices",
                MissingValListWarning,
                stacklevel=2,
            )
        made.append((n, k, medfm_episode_set(pool, key, n, k, train, val, test)))
    done = []
    for n, k, eps in made:
        path = paths[n, k]
        path.parent.mkdir(parents=True, exist_ok=True)
        EpisodeSet.load(eps.save(path), folder=where)  # the file passes every load check
        p = eps.header["protocol"]
        (ep,) = eps
        done.append(
            ImportedList(
                path, n, k, int(ep.support_indices.size), p["unique"], p["duplicates"],
                None if p["lists"]["val"] is None else len(p["val_indices"]),
                int(ep.query_indices.size), len(p["val_overlap"]),
            )
        )  # fmt: skip
    _say_overlap(key, done)
    return done


def _say_overlap(key: str, done: list[ImportedList]) -> None:
    """One warning for the whole import: how many val lists share images with the support."""
    shared = [d for d in done if d.overlap]
    if shared:
        which = ", ".join(f"{d.shots}-shot exp{d.experiment}: {d.overlap}" for d in shared[:8])
        warnings.warn(
            f"{key}: {len(shared)} of {len(done)} official val lists share images with their "
            f"support ({which}{' ...' if len(shared) > 8 else ''}); imported as published, "
            "recorded as protocol.val_overlap (our runner does not use the val lists)",
            ValOverlapWarning,
            stacklevel=3,
        )
