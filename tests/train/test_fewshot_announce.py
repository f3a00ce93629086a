"""mm-MAML says how many source tasks it really trains on (a skipped one is not counted)."""

from __future__ import annotations

import warnings
from pathlib import Path

from train_toys import make_learnable

from medimeta.evaluate.metrics import UndefinedMetricWarning
from medimeta.train.fewshot import EpisodePlan, FewShotConfig, RunSettings, run_fewshot


def test_mm_maml_announces_the_sources_it_uses(tmp_path: Path) -> None:
    root = tmp_path / "root"
    target = {"train": 30, "val": 0, "test": 30}
    make_learnable(root, "target", splits=target, channels=3, seed=1, domain="Target domain")
    make_learnable(root, "source", splits={"train": 60, "val": 6, "test": 6}, seed=2, domain="A")
    # 6 training images cannot give a 5-shot/10-query meta-episode: skipped with a warning
    make_learnable(root, "small", splits={"train": 6, "val": 3, "test": 3}, seed=3, domain="B")
    cfg = FewShotConfig(
        method="mm-maml",
        backbone="tiny_cnn",
        pretrained=False,
        image_size=16,
        meta_steps=1,
        inner_steps=1,
        eval_inner_steps=1,
        first_order=True,
    )
    said: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        record = run_fewshot(
            root, "target:case category", cfg, log=said.append,
            episodes=EpisodePlan(shots=2, queries=3, episodes=1),
            run=RunSettings(out_dir=tmp_path / "out"),
        )  # fmt: skip
    assert any("source task small:" in str(w.message) and "skipped" in str(w.message)
               for w in caught)  # fmt: skip
    announced = [m for m in said if "training on" in m]
    assert announced == ["mm-maml: training on 1 source tasks (1 of 2 skipped, see above)"]
    assert record is not None
    assert sorted(record.details["stage"]["sources"]) == [
        "small:case category",
        "source:case category",
    ]
