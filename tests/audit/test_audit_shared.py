"""``shared_image_sources``: the candidates the benchmark refuses for a target, cached."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from audit_helpers import area_down_up, center_crop, smooth_images, stretch, write_dataset

from medimeta.audit import SHARED_THRESHOLD, shared_image_sources
from medimeta.audit.shared import refusal


def _root(root: Path) -> None:
    target = smooth_images(40, seed=50)
    write_dataset(root, "target", target)
    copy = smooth_images(30, seed=51)
    copy[:20] = [area_down_up(t) for t in target[:20]]  # 20 of 40 target images, at 28 px
    write_dataset(root, "lowres_copy", copy)
    write_dataset(root, "unrelated", smooth_images(30, seed=52))
    few = smooth_images(300, seed=53)
    few[0] = area_down_up(target[30])  # one shared image in 300: under 1 %, not refused
    write_dataset(root, "one_shared", few)


def test_refuses_copies_only_and_caches(root: Path, tmp_path: Path) -> None:
    _root(root)
    cache = tmp_path / "cache"
    cands = ["lowres_copy", "unrelated", "one_shared", "target"]
    got = shared_image_sources(root, "target", cands, cache=cache)
    assert list(got) == ["lowres_copy"]
    assert got["lowres_copy"] == (
        "shares 20 of 30 images with target (20 of the 40 target images; audit, score ≥ 0.95)"
    )
    summaries = sorted((cache / "audit" / "shared").glob("*.json"))
    assert len(summaries) == 3
    stamp = [p.stat().st_mtime_ns for p in summaries]
    assert shared_image_sources(root, "target", cands, cache=cache) == got
    assert [p.stat().st_mtime_ns for p in summaries] == stamp  # read, not recomputed
    assert shared_image_sources(root, "target", cands, threshold=0.99999, cache=cache) == {}


def test_crop_copies_are_refused(root: Path, tmp_path: Path) -> None:
    sources = smooth_images(30, seed=54, shape=(170, 224))
    write_dataset(root, "stretched", np.stack([stretch(s) for s in sources]))
    write_dataset(root, "cropped", np.stack([area_down_up(center_crop(s)) for s in sources]))
    got = shared_image_sources(root, "stretched", ["cropped"], cache=tmp_path / "c")
    assert got["cropped"].startswith("shares 30 of 30 images with stretched")


def test_refusal_rule() -> None:
    base = {"target_id": "t", "target_images": 1000, "candidate_images": 100}
    assert refusal({**base, "target_shared": 9, "candidate_shared": 2}, SHARED_THRESHOLD) is None
    assert refusal({**base, "target_shared": 10, "candidate_shared": 2}, SHARED_THRESHOLD)
    assert refusal({**base, "target_shared": 0, "candidate_shared": 3}, SHARED_THRESHOLD)


def test_the_package_stays_light_for_the_planner() -> None:
    import subprocess
    import sys

    code = (
        "import sys, medimeta.audit, medimeta.cli.audit\n"
        "heavy = [m for m in ('torch', 'sklearn', 'cleanlab', 'medimeta.bench', 'matplotlib')"
        " if m in sys.modules]\n"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
