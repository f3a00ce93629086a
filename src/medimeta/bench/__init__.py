"""The paper's validation as one resumable benchmark: plan, cost estimates, cells, embedding
cache and merged result tables.

* :mod:`medimeta.bench.runner`: :func:`~medimeta.bench.runner.run_benchmark`, what
  ``medimeta benchmark`` runs (targets x methods x backbones x shots x seeds as cells).
* :mod:`medimeta.bench.plan` and :mod:`medimeta.bench.cells`: the cells, their protocol hash
  (a finished cell is never recomputed) and the printed plan.
* :mod:`medimeta.bench.calibrate` and :mod:`medimeta.bench.costs`: timed passes on real
  batches and the estimated time of every cell; budgets.
* :mod:`medimeta.bench.merge`: run records merged into the paper's Table 3 / 4 layout
  (``medimeta results merge``; the tables themselves: :mod:`medimeta.runs.tables`).
* :mod:`medimeta.bench.tasks` and :mod:`medimeta.bench.claims`: the cell function every
  executor runs (skip if finished, claim, run, release) and Slurm tasks rebuilt from the plan.
* :mod:`medimeta.bench.slurm` (with :mod:`medimeta.bench.slurm_jobs`): ``--executor slurm``,
  job arrays through submitit; :mod:`medimeta.bench.status`: ``benchmark status`` and
  ``collect``.

The embedding cache the frozen-feature cells share is :mod:`medimeta.features.cache`. Import
the submodules directly; this package imports nothing itself.
"""
