"""Build MedIMeta datasets from the raw public sources, as their publishers distribute them.

Python API::

    from medimeta.builders import build_dataset
    result = build_dataset("bus", "~/downloads/Dataset_BUSI.zip", root="data/MedIMeta")

CLI: ``medimeta build bus --source ~/downloads/Dataset_BUSI.zip``. See
:mod:`medimeta.builders.registry` (adding builders), :mod:`medimeta.builders.source`
(locating and validating raw trees) and :mod:`medimeta.builders.archives` (archives).
"""

from medimeta.builders.driver import BuildResult, plan_build, run_build
from medimeta.builders.registry import (
    Builder,
    BuildPlan,
    available_builders,
    build_dataset,
    builders_table,
    get_builder,
    register_builder,
)

__all__ = [
    "BuildPlan",
    "BuildResult",
    "Builder",
    "available_builders",
    "build_dataset",
    "builders_table",
    "get_builder",
    "plan_build",
    "register_builder",
    "run_build",
]
