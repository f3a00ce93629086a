"""Build MedIMeta datasets from the raw public sources, as their publishers distribute them.

Python API::

    from medimeta.builders import build_dataset
    result = build_dataset("bus", "~/downloads/Dataset_BUSI.zip", root="data/MedIMeta")

CLI: ``medimeta build bus --source ~/downloads/Dataset_BUSI.zip``.

Layout: :mod:`medimeta.builders.engine` is the engine and :mod:`medimeta.builders.sources` holds
one module (or sub-package) per raw source, e.g. :mod:`medimeta.builders.sources.bus` or
:mod:`medimeta.builders.sources.cbis` (with ``files`` and ``labels``). See
:mod:`medimeta.builders.engine.registry` (adding builders), :mod:`medimeta.builders.engine.driver`
(running a build), :mod:`medimeta.builders.engine.source` (locating and validating raw trees) and
:mod:`medimeta.builders.engine.scan` (how folders and archives become one tree).
"""

from medimeta.builders.engine.driver import BuildResult, build_dataset, plan_build, run_build
from medimeta.builders.engine.registry import (
    Builder,
    BuildPlan,
    available_builders,
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
