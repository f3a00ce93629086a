"""Tests of medimeta.catalog: facts of the v1.0 release, look-ups, filters, info.yaml round trip."""

from __future__ import annotations

import copy
import dataclasses
import os
import pickle
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from medimeta.catalog import (
    RELEASE,
    Catalog,
    DatasetSpec,
    TaskSpec,
    TaskTarget,
    get_catalog,
    get_dataset,
    get_task,
    list_datasets,
    load_catalog,
    task_from_identifier,
)
from medimeta.catalog.render import markdown_document, markdown_table, write_document
from medimeta.errors import FormatError, LabelError, UnknownNameError

REPO = Path(__file__).resolve().parents[2]
REFERENCE = Path(
    os.environ.get(
        "MEDIMETA_REFERENCE", REPO.parent / "shared" / "reference" / "medimeta-info-yaml"
    )
)
RELEASED_IDS = [
    "aml", "bus", "crc", "cxr", "derm", "dr_regular", "dr_uwf", "fundus", "glaucoma",
    "mammo_calc", "mammo_mass", "oct", "organs_axial", "organs_coronal", "organs_sagittal",
    "pbc", "pneumonia", "skinl_derm", "skinl_photo",
]  # fmt: skip


def reference_files() -> list[Path]:
    if not REFERENCE.is_dir():
        return []
    return sorted(p for p in REFERENCE.glob("*.yaml") if p.name != "AIROGS.yaml")


@pytest.fixture(scope="module")
def cat() -> Catalog:
    return get_catalog()


def test_totals_match_the_release(cat: Catalog) -> None:
    assert len(cat) == 19
    assert sorted(cat.ids) == RELEASED_IDS
    assert cat.num_tasks == len(cat.tasks()) == 54
    assert len(cat.domains) == 10
    assert cat.num_samples == sum(ds.num_samples for ds in cat) == 399_742
    assert "airogs" not in cat


def test_task_type_counts(cat: Catalog) -> None:
    counts = Counter(t.target for t in cat.tasks())
    assert counts == {
        TaskTarget.MULTICLASS_CLASSIFICATION: 30,
        TaskTarget.BINARY_CLASSIFICATION: 13,
        TaskTarget.MULTILABEL_CLASSIFICATION: 6,
        TaskTarget.ORDINAL_REGRESSION: 5,
    }


@pytest.mark.parametrize("dataset_id", RELEASED_IDS)
def test_split_counts_add_up(cat: Catalog, dataset_id: str) -> None:
    ds = cat.get(dataset_id)
    assert tuple(ds.splits) == tuple(ds.original_splits) == ("train", "val", "test")
    assert ds.num_samples == sum(ds.splits.values()) == sum(ds.original_splits.values())
    assert ds.num_channels in (1, 3) and ds.image_size == (224, 224)


def test_overlaps_are_consistent(cat: Catalog) -> None:
    for ds in cat:
        same_domain = sorted(o.id for o in cat.datasets(domain=ds.domain) if o.id != ds.id)
        assert sorted(ds.domain_overlaps) == same_domain, ds.id
        for other in ds.subject_overlaps:
            assert ds.id in cat.get(other).subject_overlaps


def test_links_and_release(cat: Catalog) -> None:
    assert RELEASE is cat.release
    assert RELEASE.zenodo_record == 7884735
    assert RELEASE.doi == "10.5281/zenodo.7884735"
    assert RELEASE.version == "v1.0"
    assert RELEASE.doi_url == "https://doi.org/10.5281/zenodo.7884735"
    for ds in cat:
        assert ds.download_url == RELEASE.url == "https://zenodo.org/records/7884735"
        assert ds.doi == RELEASE.doi
        assert ds.project_website == RELEASE.project_website


def test_bus(cat: Catalog) -> None:
    bus = cat.get("bus")
    assert (bus.name, bus.domain, bus.info_file) == (
        "Breast Ultrasound",
        "Breast ultrasound",
        "BUSI.yaml",
    )
    assert bus.input_size == (1, 224, 224) and bus.num_channels == 1
    assert bus.num_samples == 780
    assert dict(bus.splits) == {"train": 546, "val": 78, "test": 156}
    assert dict(bus.original_splits) == {"train": 780, "val": 0, "test": 0}
    assert bus.task_names == ("case category", "malignancy")
    case = bus.task("case category")
    assert case.target is TaskTarget.MULTICLASS_CLASSIFICATION
    assert dict(case.labels) == {0: "normal", 1: "benign", 2: "malignant"}
    assert case.class_names == ("normal", "benign", "malignant")
    assert case.identifier == "bus:case category" and case.is_contiguous
    assert dict(bus.task("malignancy").labels) == {
        0: "no malignant finding",
        1: "malignant finding",
    }
    assert bus.license_short == "CC BY-SA 4.0" and not bus.is_noncommercial
    assert bus.sources[0].name == "BUSI_dataset"
    assert (
        bus.sources[0].paper_url
        == "https://www.sciencedirect.com/science/article/pii/S2352340919312181"
    )


def test_non_contiguous_ordinal_keys(cat: Catalog) -> None:
    artifact = cat.task("dr_regular", "Artifact")
    assert artifact.target is TaskTarget.ORDINAL_REGRESSION
    assert artifact.keys == (0, 1, 4, 6, 8, 10)
    assert artifact.num_classes == 6 and not artifact.is_contiguous
    assert [artifact.key_to_index(k) for k in artifact.keys] == list(range(6))
    assert [artifact.index_to_key(i) for i in range(6)] == [0, 1, 4, 6, 8, 10]
    assert artifact.class_names[2] == "Do not affect the macular area with scope less than 1/4"
    with pytest.raises(LabelError, match=r"label key 2 is not one of \[0, 1, 4, 6, 8, 10\]"):
        artifact.key_to_index(2)
    with pytest.raises(LabelError, match=r"outside 0\.\.5"):
        artifact.index_to_key(6)
    assert artifact.key_to_index(np.int64(10)) == 5  # keys as read from task_labels/*.npy
    for bad in (4.5, True, "4"):
        with pytest.raises(LabelError):
            artifact.key_to_index(bad)  # type: ignore[arg-type]
    assert cat.task("dr_regular", "Clarity").keys == (1, 4, 6, 8, 10)
    assert cat.task("dr_regular", "Field definition").keys == (1, 4, 6, 8, 10)
    assert cat.task("dr_regular", "DR level").is_contiguous


def test_yaml_pitfalls_are_strings(cat: Catalog) -> None:
    assert dict(cat.task("cxr", "patient sex").labels) == {0: "F", 1: "M"}
    assert dict(cat.task("oct", "urgent referral").labels) == {0: "NO", 1: "YES"}
    assert cat.get("cxr").num_samples == 112_120


def test_source_typos_are_kept(cat: Catalog) -> None:
    assert cat.task("aml", "morphological class").labels[13] == "PMB Promyelocyte (bilobled)"
    derm = cat.task("derm", "disease category").labels[3]
    assert derm == "Actinic keratosis / Bowen\u2019s disease (intraepithelial carcinoma)"
    # Both derm7pt files carry DeepDRiD's title in original_data[0].title in the release.
    assert cat.get("skinl_photo").sources[0].title.startswith("DeepDRiD")


def test_source_records(cat: Catalog) -> None:
    calc = cat.get("mammo_calc").sources[0]
    assert isinstance(calc.citations, Mapping)
    assert list(calc.citations) == ["data", "publication", "TCIA"]
    bus = cat.get("bus").sources[0]
    assert isinstance(bus.citations, tuple) and len(bus.citations) == 1
    assert cat.get("crc").sources[0].paper_title is None
    assert list(cat.get("derm").sources[0].extra) == ["url2"]
    assert list(cat.get("organs_axial").sources[0].extra) == ["download_url1", "download_url2"]
    assert len(cat.get("organs_axial").sources) == 2
    assert list(cat.get("skinl_derm").sources[0].extra) == ["code_url"]
    assert cat.get("oct").sources[0].citation_texts[0].startswith("Kermany, Daniel")


def test_did_you_mean(cat: Catalog) -> None:
    with pytest.raises(UnknownNameError, match="did you mean 'bus'") as err:
        cat.get("buss")
    assert isinstance(err.value, KeyError)
    with pytest.raises(UnknownNameError, match="did you mean 'case category'"):
        cat.get("bus").task("case categroy")
    with pytest.raises(UnknownNameError, match="did you mean 'disease class'"):
        cat.task("oct", "Disease")
    with pytest.raises(UnknownNameError, match="did you mean 'bus'"):
        get_dataset("buss")


def test_parse_task_id(cat: Catalog) -> None:
    case = cat.get("bus").task("case category")
    assert cat.parse_task_id("bus:case category") is case
    assert cat.parse_task_id(" bus : case category ") is case
    assert cat.parse_task_id("Breast Ultrasound: case category") is case
    assert cat.task("bus:case category") is case
    assert get_task("bus:case category") is case
    assert get_task("bus", "case category") is case
    assert task_from_identifier(case.identifier) is case
    assert all(cat.parse_task_id(t.identifier) is t for t in cat.tasks())
    with pytest.raises(UnknownNameError, match="'bus:case category', 'bus:malignancy'"):
        cat.parse_task_id("bus")
    with pytest.raises(UnknownNameError, match="did you mean 'malignancy'"):
        cat.parse_task_id("bus:malignant")
    with pytest.raises(UnknownNameError, match="did you mean 'bus'"):
        cat.parse_task_id("bsu:malignancy")


def test_task_target() -> None:
    for member in TaskTarget:
        assert member.value == member.name == str(member)
        assert TaskTarget.parse(member.name) is member
        assert TaskTarget.parse(member.short) is member
        assert TaskTarget.parse(member) is member
    assert [m.short for m in TaskTarget] == ["multiclass", "binary", "multilabel", "ordinal"]
    assert TaskTarget.parse("Multi-Label") is TaskTarget.MULTILABEL_CLASSIFICATION
    with pytest.raises(UnknownNameError, match="unknown task target 'regression'"):
        TaskTarget.parse("regression")


def ids(datasets: list[DatasetSpec]) -> list[str]:
    return [ds.id for ds in datasets]


def test_filters(cat: Catalog) -> None:
    fundus = ["dr_regular", "dr_uwf", "fundus", "glaucoma"]
    assert ids(cat.datasets(domain="Retinal fundus")) == fundus
    assert ids(cat.datasets(domain="retinal FUNDUS")) == fundus
    organs = ["organs_axial", "organs_coronal", "organs_sagittal"]
    assert ids(cat.datasets(noncommercial=True)) == organs
    assert len(cat.datasets(noncommercial=False)) == 16
    assert ids(cat.datasets(license="CC BY-NC-SA 4.0")) == organs
    assert ids(cat.datasets(license="NonCommercial")) == organs
    assert len(cat.datasets(license="cc by-sa 4.0")) == 16
    assert ids(cat.datasets(task_type="ordinal")) == ["dr_regular", "dr_uwf"]
    assert ids(cat.datasets(domain="Chest X-ray", task_type="multilabel")) == ["cxr"]
    assert ids(list_datasets(domain="Microscopy")) == ["aml", "pbc"]
    assert len(cat.datasets()) == 19


def test_task_filters(cat: Catalog) -> None:
    assert len(cat.tasks(task_type="multilabel")) == 6
    assert len(cat.tasks(task_type=TaskTarget.ORDINAL_REGRESSION)) == 5
    assert [t.name for t in cat.tasks(dataset_id="bus")] == ["case category", "malignancy"]
    binary_cxr = cat.tasks(domain="chest x-ray", task_type="BINARY_CLASSIFICATION")
    assert [t.identifier for t in binary_cxr] == ["cxr:patient sex", "pneumonia:pneumonia presence"]
    assert len(cat.tasks(dataset_id="skinl_derm", task_type="binary")) == 2


def test_filter_errors(cat: Catalog) -> None:
    with pytest.raises(UnknownNameError, match="'Retinal fundus'") as err:
        cat.datasets(domain="Retina fundus")
    assert "Abdominal CT" in str(err.value)
    with pytest.raises(UnknownNameError, match="unknown license 'MIT'"):
        cat.datasets(license="MIT")
    with pytest.raises(UnknownNameError, match="task target"):
        cat.tasks(task_type="segmentation")
    with pytest.raises(UnknownNameError, match="did you mean 'bus'"):
        cat.tasks(dataset_id="buss")


def test_specs_are_immutable(cat: Catalog) -> None:
    bus = cat.get("bus")
    task = bus.task("case category")
    with pytest.raises(TypeError):
        task.labels[0] = "changed"  # type: ignore[index]
    with pytest.raises(TypeError):
        bus.splits["train"] = 0  # type: ignore[index]
    with pytest.raises(TypeError):
        cat.get("mammo_calc").sources[0].citations["data"] = "x"  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        bus.id = "other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        task.name = "other"  # type: ignore[misc]
    assert isinstance(bus.tasks, tuple) and isinstance(bus.sources, tuple)
    assert cat.get("bus").task("case category").labels[0] == "normal"


def test_specs_hash_and_pickle(cat: Catalog) -> None:
    # DataLoader workers started with "spawn" pickle datasets that hold these specs.
    for ds in cat:
        again = pickle.loads(pickle.dumps(ds))
        assert again == ds and hash(again) == hash(ds)
    assert len({t for t in cat.tasks()}) == 54


def test_task_spec_validates_labels() -> None:
    with pytest.raises(LabelError, match="must not be empty"):
        TaskSpec("x", "t", TaskTarget.BINARY_CLASSIFICATION, {})
    with pytest.raises(LabelError, match="int -> str"):
        TaskSpec("x", "t", TaskTarget.BINARY_CLASSIFICATION, {"0": "a"})  # type: ignore[dict-item]
    spec = TaskSpec("x", "t", "binary", {1: "b", 0: "a"})  # type: ignore[arg-type]
    assert spec.target is TaskTarget.BINARY_CLASSIFICATION
    assert list(spec.labels) == [1, 0] and spec.keys == (0, 1) and spec.class_names == ("a", "b")


@pytest.mark.parametrize("path", reference_files(), ids=lambda p: p.name)
def test_round_trip_with_release_info_files(cat: Catalog, path: Path) -> None:
    info = yaml.safe_load(path.read_text(encoding="utf-8"))
    ds = cat.get(info["id"])
    assert ds.info_file == path.name
    produced = ds.to_info_dict()
    assert produced == info
    assert list(produced) == list(info)
    for ours, theirs in zip(produced["original_data"], info["original_data"], strict=True):
        assert list(ours) == list(theirs)
    assert DatasetSpec.from_info_dict(info, info_file=path.name) == ds


def test_reference_folder_holds_all_datasets() -> None:
    files = reference_files()
    if not files:
        pytest.skip(f"release info files not found at {REFERENCE} (set MEDIMETA_REFERENCE)")
    assert len(files) == 19
    airogs = REFERENCE / "AIROGS.yaml"
    if airogs.exists():  # not released: its file lacks the sample counts
        with pytest.raises(FormatError, match="total_num_samples"):
            DatasetSpec.from_info_dict(yaml.safe_load(airogs.read_text("utf-8")))


def test_to_info_dict_survives_yaml(cat: Catalog) -> None:
    for ds in cat:
        text = yaml.safe_dump(ds.to_info_dict(), sort_keys=False, allow_unicode=True)
        assert DatasetSpec.from_info_dict(yaml.safe_load(text), info_file=ds.info_file) == ds


def _set(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(info: dict[str, Any]) -> None:
        node: Any = info
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value

    return mutate


def _drop(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda info: info.pop(key)


BAD_INFO = [
    (_drop("tasks"), "tasks", "a list", "<missing>"),
    (_drop("input_size"), "input_size", "a list", "<missing>"),
    (_set(("total_num_samples",), "780"), "total_num_samples", "an integer", "780"),
    (_set(("total_num_samples",), 781), "splits_num_samples", 781, 780),
    (_set(("tasks", 0, "task_target"), "REGRESSION"), "tasks[0].task_target", None, "REGRESSION"),
    (_set(("tasks", 0, "labels"), {"0": "a"}), "tasks[0].labels", "an integer key", "0"),
    (_set(("tasks", 0, "labels"), {0: False}), "tasks[0].labels[0]", "a string", False),
    (_set(("tasks", 0, "labels"), {}), "tasks[0].labels", "1+ labels", {}),
    (_set(("input_size",), [2, 224, 224]), "input_size", "[1|3, H, W]", [2, 224, 224]),
    (_set(("splits_num_samples", "train"), -1), "splits_num_samples.train", None, -1),
    (_set(("splits_num_samples", "training"), 1), "splits_num_samples", None, ["training"]),
    (_set(("original_data", 0, "url2"), 3), "original_data[0].url2", "a string", 3),
    (_set(("id",), 7), "id", "a string", 7),
]


@pytest.mark.parametrize(("mutate", "key", "expected", "actual"), BAD_INFO)
def test_from_info_dict_errors(
    mutate: Callable[[dict[str, Any]], None], key: str, expected: Any, actual: Any
) -> None:
    info = copy.deepcopy(get_dataset("bus").to_info_dict())
    mutate(info)
    with pytest.raises(FormatError) as err:
        DatasetSpec.from_info_dict(info, info_file="some/where/info.yaml")
    assert err.value.key == key
    assert err.value.actual == actual
    if expected is not None:
        assert err.value.expected == expected
    assert err.value.path == Path("some/where/info.yaml")
    assert "some/where/info.yaml" in str(err.value) and key in str(err.value)


def test_from_info_dict_defaults_for_optional_keys() -> None:
    info = get_dataset("bus").to_info_dict()
    optional = ("summary", "license", "project_website", "download_url", "DOI", "original_data")
    for key in (*optional, "domain_overlaps", "subject_overlaps", "original_splits_num_samples"):
        del info[key]
    ds = DatasetSpec.from_info_dict(info)
    assert (ds.summary, ds.license, ds.doi, ds.sources) == ("", "", "", ())
    assert ds.domain_overlaps == ds.subject_overlaps == ()
    assert dict(ds.original_splits) == {"train": 0, "val": 0, "test": 0}
    assert ds.info_file == "info.yaml" and not ds.is_noncommercial
    with pytest.raises(FormatError, match="original_splits_num_samples"):
        DatasetSpec.from_info_dict(info | {"original_splits_num_samples": {"train": 1}})
    with pytest.raises(FormatError, match="mapping"):
        DatasetSpec.from_info_dict(["id", "bus"])  # type: ignore[arg-type]


def test_catalog_rejects_duplicates_and_dangling_overlaps(cat: Catalog) -> None:
    bus = cat.get("bus")
    with pytest.raises(FormatError, match="appears twice"):
        Catalog([bus, bus], release=cat.release)
    with pytest.raises(FormatError, match="not in the catalog"):
        Catalog([cat.get("aml")], release=cat.release)
    small = Catalog([bus], release=cat.release)
    assert len(small) == 1 and "bus" in small and bus in small and small["bus"] is bus


def test_load_catalog_from_file(tmp_path: Path) -> None:
    packaged = yaml.safe_load(
        (REPO / "src" / "medimeta" / "catalog" / "datasets.yaml").read_text("utf-8")
    )
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(packaged, sort_keys=False, allow_unicode=True), "utf-8")
    assert list(load_catalog(good)) == list(get_catalog())

    wrong_schema = tmp_path / "schema.yaml"
    wrong_schema.write_text(yaml.safe_dump(packaged | {"schema": "other/9"}), "utf-8")
    with pytest.raises(FormatError, match="unsupported catalog schema"):
        load_catalog(wrong_schema)

    broken = copy.deepcopy(packaged)
    broken["datasets"][1]["tasks"][0]["labels"] = {"zero": "normal"}
    bad_labels = tmp_path / "labels.yaml"
    bad_labels.write_text(yaml.safe_dump(broken), "utf-8")
    with pytest.raises(FormatError, match=r"datasets\[1\]\.tasks\[0\]\.labels"):
        load_catalog(bad_labels)


def test_docs_page_is_generated_from_the_catalog() -> None:
    page = REPO / "docs" / "catalog.md"
    assert page.read_text(encoding="utf-8") == markdown_document(), (
        "docs/catalog.md is stale: run `python -m medimeta.catalog.render docs/catalog.md`"
    )


def test_markdown_table(cat: Catalog, tmp_path: Path) -> None:
    lines = markdown_table(cat).splitlines()
    assert len(lines) == 2 + 19
    assert lines[3].startswith(
        "| `bus` | Breast Ultrasound | Breast ultrasound | 780 | 546 / 78 / 156"
    )
    assert "0, 1, 4, 6, 8, 10" in markdown_document(cat)
    out = write_document(tmp_path / "sub" / "catalog.md", cat)
    assert out.read_text("utf-8") == markdown_document(cat)
    assert [p.name for p in out.parent.iterdir()] == ["catalog.md"]


def test_record_ids_come_from_the_catalog() -> None:
    from medimeta.fetch import MEDIMETA_RECORD, MEDMNIST_RECORD, record_id

    cat = get_catalog()
    assert cat.zenodo_record() == MEDIMETA_RECORD == record_id() == "7884735"
    assert cat.related("medmnist").doi == "10.5281/zenodo.10519652"
    assert MEDMNIST_RECORD == record_id("medmnist") == "10519652"
    with pytest.raises(UnknownNameError, match="medmnst"):
        cat.related("medmnst")
