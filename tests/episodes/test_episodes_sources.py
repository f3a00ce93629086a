"""Leave-one-out source selection (target, domain overlaps, subject overlaps)."""

from __future__ import annotations

from pathlib import Path

import pytest

from medimeta.catalog import get_catalog
from medimeta.episodes import excluded_datasets, source_tasks
from medimeta.errors import UnknownNameError


def ids(tasks: list) -> list[str]:
    return [t.dataset_id for t in tasks]


def test_paper_selection_first_task_per_dataset() -> None:
    catalog = get_catalog()
    got = source_tasks("dr_regular:DR level")
    assert "dr_regular" not in ids(got)
    assert not {"dr_uwf", "fundus", "glaucoma"} & set(ids(got))  # domain overlaps
    assert len(ids(got)) == len(set(ids(got))) == len(catalog) - 4
    for task in got:
        assert task == catalog.get(task.dataset_id).tasks[0]


def test_subject_overlaps_and_both_directions() -> None:
    skip = excluded_datasets("skinl_photo")
    assert skip == {"skinl_photo": "target", "skinl_derm": "subject overlap"}
    organs = excluded_datasets("organs_axial:organ label")
    assert set(organs) == {"organs_axial", "organs_coronal", "organs_sagittal"}
    assert "derm" in ids(source_tasks("skinl_photo"))  # derm overlaps skinl_derm, not the target


def test_all_tasks_and_same_domain() -> None:
    every = source_tasks("bus", tasks="all")
    assert sum(1 for t in every if t.dataset_id == "skinl_derm") == 12
    assert "cxr" not in ids(source_tasks("pneumonia", tasks="all"))
    stricter = excluded_datasets("mammo_mass", exclude_same_domain=True)
    assert stricter["mammo_calc"] == "domain overlap"


def test_same_domain_option() -> None:
    base = {t.dataset_id for t in source_tasks("skinl_photo")}
    catalog = get_catalog()
    same = [d.id for d in catalog if d.domain == catalog.get("derm").domain]
    assert set(same) <= base | {"skinl_derm"}
    # a target with no listed overlaps but a shared domain: only the option removes it
    from dataclasses import replace

    derm = catalog.get("derm")
    tasks = tuple(replace(t, dataset_id="derm_copy") for t in derm.tasks)
    lonely = replace(derm, id="derm_copy", tasks=tasks, domain_overlaps=(), subject_overlaps=())
    pool = [*catalog, lonely]
    assert "derm" in {t.dataset_id for t in source_tasks(lonely, datasets=pool)}
    strict = source_tasks(lonely, datasets=pool, exclude_same_domain=True)
    assert not {"derm", "skinl_derm"} & {t.dataset_id for t in strict}


def test_root_restricts_to_present_datasets(ep_root: Path) -> None:
    assert ids(source_tasks("ep_rgb:grade", datasets=ep_root)) == ["ep_gray"]
    assert len(source_tasks("ep_gray", datasets=ep_root, tasks="all")) == 6
    with pytest.raises(UnknownNameError):
        source_tasks("nope:task", datasets=ep_root)
    with pytest.raises(UnknownNameError):
        source_tasks("bus", tasks="some")
