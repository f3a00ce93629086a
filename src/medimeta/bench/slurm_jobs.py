"""The callables a Slurm job runs (submitit pickles them by reference, with their
:class:`~medimeta.bench.tasks.TaskSpec`): checkpointable, so that a time-out or a preemption
requeues the job with the same cells instead of losing it. Imported only where submitit is
installed (the ``cluster`` extra)."""

from __future__ import annotations

from typing import Any

import submitit

from medimeta.bench.tasks import TaskSpec, run_embedding, run_task


class CellTask(submitit.helpers.Checkpointable):
    """A Slurm task of benchmark cells; requeued with the same cells when it times out or is
    preempted (finished cells are skipped, the running one resumes)."""

    def __call__(self, spec: TaskSpec) -> dict[str, Any]:
        return run_task(spec)


class EmbedTask(submitit.helpers.Checkpointable):
    """The job that fills the feature cache for one dataset and backbone (requeued likewise;
    the cache keeps what was embedded)."""

    def __call__(self, spec: TaskSpec) -> dict[str, Any]:
        return run_embedding(spec)
