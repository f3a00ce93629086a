"""Pictures of the data and the results: sample panels, montages, episode grids, charts and
an HTML report.

matplotlib is imported only when a picture is drawn (``import medimeta.plots`` stays light).
Figures are ``matplotlib.figure.Figure`` objects on their own Agg canvas: pyplot is never
imported, so the user's backend and open figures are left alone and no window opens. Save one
with ``fig.savefig(path)`` or :func:`save_figure` (atomic).

* :func:`plot_samples`, :func:`montage`: samples of a ``MedIMeta``/``MedIMetaMultiTask``.
* :func:`dataset_overview`, :func:`class_grid`: one tile per dataset; examples per class.
* :func:`episode_grid`: support and query images of a few-shot episode.
* :func:`label_distribution`, :func:`split_distribution`: counts per class and split.
* :func:`training_curves`, :func:`roc_curves`, :func:`fewshot_intervals`,
  :func:`fewshot_episodes`: results of ``medimeta train`` and ``medimeta fewshot`` runs.
* :func:`shots_curves`, :func:`task_heatmap`, :func:`reliability_diagram`: a grid of
  few-shot results against shots, across tasks and backbones, and a run's calibration.
* :func:`write_report`: the static HTML report of ``medimeta report``.
"""

from medimeta.plots._figure import figure_png, figure_to_image, save_figure, save_image
from medimeta.plots.charts import label_distribution, split_distribution
from medimeta.plots.episodes import episode_grid
from medimeta.plots.grids import reliability_diagram, shots_curves, task_heatmap
from medimeta.plots.overview import class_grid, dataset_overview
from medimeta.plots.report import Report, write_report
from medimeta.plots.results import fewshot_episodes, fewshot_intervals, roc_curves, training_curves
from medimeta.plots.samples import montage, plot_samples

__all__ = [
    "Report",
    "class_grid",
    "dataset_overview",
    "episode_grid",
    "fewshot_episodes",
    "fewshot_intervals",
    "figure_png",
    "figure_to_image",
    "label_distribution",
    "montage",
    "plot_samples",
    "reliability_diagram",
    "roc_curves",
    "save_figure",
    "save_image",
    "shots_curves",
    "split_distribution",
    "task_heatmap",
    "training_curves",
    "write_report",
]
