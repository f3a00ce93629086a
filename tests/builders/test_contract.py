"""Contract of every registered builder: its fake raw source builds into a dataset that
verifies and matches the catalog.

The parametrisation is :func:`medimeta.builders.available_builders` itself, so a builder is
tested the moment it is registered; one without a fake raw source (``tests/fakes/<source>.py``
plus its adapter in :data:`FAKES`) fails with a message saying what to add. For each builder:

1. its fake raw source (written by the existing generator in ``tests/fakes``, in the
   publisher's layout) is generated once per source module into a temporary folder;
2. it is built with :func:`medimeta.builders.build_dataset`, with ``partial=True`` exactly when
   the fake is smaller than the release (as the per-builder tests do);
3. :func:`medimeta.format.verify.verify_dataset` (deep) reports no problem;
4. the built info.yaml matches ``get_dataset(id)``: task names in order, task targets, label
   dicts (keys, names, order) and input size; the label arrays and images have the catalog's
   shapes; the sample and source-split counts are the ones the fake generated, the splits add
   up to them and keep the catalog's split policy (for a full-size fake: the catalog's counts).
"""

from __future__ import annotations

import importlib.util
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

from fakes.aml import make_aml
from fakes.bus import make_busi
from fakes.cbis import make_cbis_tree
from fakes.chaksu import make_chaksu_tree
from fakes.crc import make_crc
from fakes.cxr import make_cxr_tree
from fakes.deepdrid import make_deepdrid_tree
from fakes.derm import make_isic
from fakes.derm7pt import INDEXES, make_release
from fakes.fundus import make_rfmid
from fakes.kermany import make_celldata
from fakes.lits import make_lits_tree
from fakes.pbc import make_pbc
from medimeta.builders import Builder, available_builders, build_dataset, get_builder
from medimeta.catalog import TaskTarget, get_dataset, list_datasets
from medimeta.errors import MedIMetaError
from medimeta.format.reader import DatasetFolder
from medimeta.format.verify import verify_dataset

SPLITS = ("train", "val", "test")
SOURCES_PACKAGE = "medimeta.builders.sources."

Counts = dict[str, int]


@dataclass(frozen=True)
class FakeSource:
    """A generated raw source: what to pass as ``source`` and, per dataset id built from it,
    the samples per source split the build must hold."""

    path: Path
    counts: dict[str, Counts]


def _tally(splits: Iterable[str]) -> Counts:
    found = Counter(splits)
    assert set(found) <= set(SPLITS), found
    return {s: found.get(s, 0) for s in SPLITS}


# One adapter per raw source (the module name under medimeta/builders/sources and
# tests/fakes). Needed because the fakes' entry points differ in name, arguments and what they
# return, and only the fake knows how many samples of each source split it wrote (including
# the rows a builder must drop: LiTS's volume without spacing, DeepDRiD's ungradable UWF
# images). Each uses the smallest fake the per-builder tests use.


def _aml(root: Path) -> FakeSource:
    facts = make_aml(root)  # annotations.dat + AML-Cytomorphology/, the zip's top level
    return FakeSource(root, {"aml": _tally("train" for _ in facts)})


def _bus(root: Path) -> FakeSource:
    facts = make_busi(root)
    return FakeSource(root / "Dataset_BUSI_with_GT", {"bus": _tally("train" for _ in facts)})


def _cbis(root: Path) -> FakeSource:
    fake = make_cbis_tree(root)
    return FakeSource(
        fake.root,
        {
            f"mammo_{kind}": _tally(a.split for a in fake.abnormalities if a.kind == kind)
            for kind in ("calc", "mass")
        },
    )


def _chaksu(root: Path) -> FakeSource:
    fake = make_chaksu_tree(root)  # Train.zip + Test.zip
    return FakeSource(fake.root, {"glaucoma": _tally(split for split, _, _ in fake.labels)})


def _crc(root: Path) -> FakeSource:
    facts = make_crc(root)  # CRC-VAL-HE-7K is the source's validation set
    splits = ("val" if p.startswith("CRC-VAL-HE-7K/") else "train" for p in facts)
    return FakeSource(root, {"crc": _tally(splits)})


def _cxr(root: Path) -> FakeSource:
    fake = make_cxr_tree(root)  # images_00N.tar.gz
    splits = ("test" if name in fake.test else "train" for name in fake.findings)
    return FakeSource(fake.root, {"cxr": _tally(splits)})


def _deepdrid(root: Path) -> FakeSource:
    fake = make_deepdrid_tree(root)
    return FakeSource(
        fake.root,
        {
            "dr_regular": _tally(fake.regular_split.values()),
            "dr_uwf": _tally(fake.uwf_split.values()),  # without the ungradable images
        },
    )


def _derm(root: Path) -> FakeSource:
    facts = make_isic(root)  # the six zips, groupings and HAM10000 metadata
    return FakeSource(root, {"derm": _tally(f["split"] for f in facts.values())})


def _derm7pt(root: Path) -> FakeSource:
    rows = make_release(root)
    counts = {"train": len(INDEXES["train"]), "val": len(INDEXES["valid"])}
    counts["test"] = len(INDEXES["test"])
    assert sum(counts.values()) == len(rows)
    return FakeSource(root / "release_v0", {"skinl_photo": counts, "skinl_derm": counts})


def _fundus(root: Path) -> FakeSource:
    diseases = list(get_dataset("fundus").task("disease labels").class_names)
    facts = make_rfmid(root, diseases)
    return FakeSource(root, {"fundus": _tally(f["split"] for f in facts.values())})


def _kermany(root: Path) -> FakeSource:
    facts = make_celldata(root)
    return FakeSource(
        root / "CellData",
        {
            dataset_id: _tally(f["split"] for p, f in facts.items() if p.startswith(prefix))
            for dataset_id, prefix in (("oct", "OCT/"), ("pneumonia", "chest_xray/"))
        },
    )


def _lits(root: Path) -> FakeSource:
    fake = make_lits_tree(root)
    # One sample per organ box and plane; the volume with spacing (1, 1, 1) is dropped.
    kept = [v for v in fake.volumes if v.spacing != (1.0, 1.0, 1.0)]
    counts = _tally(v.split for v in kept for _ in v.boxes)
    planes = ("organs_axial", "organs_coronal", "organs_sagittal")
    return FakeSource(fake.root, dict.fromkeys(planes, counts))


def _pbc(root: Path) -> FakeSource:
    facts = make_pbc(root, per_class=1)
    return FakeSource(root / "PBC_dataset_normal_DIB", {"pbc": _tally("train" for _ in facts)})


FAKES: dict[str, Callable[[Path], FakeSource]] = {
    "aml": _aml,
    "bus": _bus,
    "cbis": _cbis,
    "chaksu": _chaksu,
    "crc": _crc,
    "cxr": _cxr,
    "deepdrid": _deepdrid,
    "derm": _derm,
    "derm7pt": _derm7pt,
    "fundus": _fundus,
    "kermany": _kermany,
    "lits": _lits,
    "pbc": _pbc,
}


def source_module(builder: Builder) -> str:
    """The builder's raw-source module under medimeta.builders.sources (``cbis``, ``kermany``)."""
    return type(builder).__module__.removeprefix(SOURCES_PACKAGE).split(".")[0]


@pytest.fixture(scope="module")
def fake_source(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], FakeSource]:
    """Each fake raw source is written once and shared by the builders of that source."""
    made: dict[str, FakeSource] = {}

    def get(source: str) -> FakeSource:
        if source not in made:
            made[source] = FAKES[source](tmp_path_factory.mktemp(f"fake-{source}"))
        return made[source]

    return get


def test_every_catalog_dataset_has_a_builder() -> None:
    # A source module that fails to import is skipped by the registry, and so by the
    # parametrisation below; get_builder says why.
    missing = []
    for spec in list_datasets():
        try:
            get_builder(spec.id)
        except MedIMetaError as exc:
            missing.append(f"{spec.id}: {exc}")
    assert not missing, "\n".join(missing)


@pytest.mark.parametrize("dataset_id", available_builders())
def test_builder_contract(
    dataset_id: str, fake_source: Callable[[str], FakeSource], tmp_path: Path
) -> None:
    builder = get_builder(dataset_id)
    source = source_module(builder)
    if importlib.util.find_spec(f"fakes.{source}") is None:
        pytest.fail(
            f"registered builder {dataset_id!r} ({type(builder).__module__}) has no fake raw "
            f"source: add tests/fakes/{source}.py and an adapter in FAKES of {Path(__file__).name}"
        )
    if source not in FAKES:
        pytest.fail(
            f"registered builder {dataset_id!r}: tests/fakes/{source}.py exists but FAKES in "
            f"{Path(__file__).name} has no adapter {source!r} for it"
        )
    fake = fake_source(source)
    if dataset_id not in fake.counts:
        pytest.fail(
            f"registered builder {dataset_id!r}: the FAKES adapter {source!r} does not say how "
            f"many samples its fake holds for it (it covers {sorted(fake.counts)})"
        )
    expected = fake.counts[dataset_id]
    total = sum(expected.values())
    spec = get_dataset(dataset_id)
    full = total == spec.num_samples and expected == dict(spec.original_splits)

    # 2. build (partial only when the fake is smaller than the release)
    result = build_dataset(dataset_id, fake.path, root=tmp_path / "out", partial=not full)
    assert result.dataset_id == dataset_id
    assert result.path == tmp_path / "out" / dataset_id

    # 3. the result verifies
    report = verify_dataset(result.path, deep=True)
    assert report.ok, report.format()
    folder = DatasetFolder(result.path)
    built = folder.spec
    assert built.id == dataset_id

    # 4. tasks, targets and labels as in the catalog
    assert [t.name for t in built.tasks] == list(spec.task_names)
    n = folder.num_samples
    for got, want in zip(built.tasks, spec.tasks, strict=True):
        assert got.target is want.target, got.name
        assert list(got.labels.items()) == list(want.labels.items()), got.name
        assert got.num_classes == want.num_classes, got.name
        labels = folder.labels(want.name)  # checked against the task's keys by the reader
        multilabel = want.target is TaskTarget.MULTILABEL_CLASSIFICATION
        assert labels.shape == ((n, want.num_classes) if multilabel else (n,)), want.name
    assert built.input_size == spec.input_size
    channels = () if spec.num_channels == 1 else (spec.num_channels,)
    assert folder.image_store("hdf5").shape == (n, *spec.image_size, *channels)

    # 4. sample counts: what the fake generated, splits adding up, the catalog's split policy
    original = folder.split_counts(original=True)
    splits = folder.split_counts()
    assert n == total, f"{n} samples built; the fake holds {total}"
    assert original == expected
    assert sum(splits.values()) == n
    assert result.num_samples == n
    assert (result.splits, result.original_splits) == (splits, original)
    assert bool(folder.info.get("partial", False)) is not full
    indices = {s: set(folder.split_indices(s).tolist()) for s in SPLITS}
    source_indices = {s: set(folder.split_indices(s, original=True).tolist()) for s in SPLITS}
    if dict(spec.splits) == dict(spec.original_splits):  # the release keeps the source splits
        assert indices == source_indices
    if spec.original_splits["test"] and spec.splits["test"] == spec.original_splits["test"]:
        assert indices["test"] == source_indices["test"]  # the source test set is the test set
    ann = folder.annotations
    if "original_split" in ann.columns:
        column = ann["original_split"].to_numpy()
        for s in SPLITS:
            assert (column[sorted(source_indices[s])] == s).all(), s
    if full:
        assert splits == dict(spec.splits)
        assert n == spec.num_samples
