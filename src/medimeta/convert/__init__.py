"""Converters from other formats into the MedIMeta format.

``convert_medmnist`` (MedMNIST 2D ``.npz``), ``convert_medfmc`` (MedFMC ChestDR/ColonPath/Endo),
``convert_folder`` (one subfolder per class) and ``convert_csv`` (paths + labels). Each writes
a dataset folder with :func:`medimeta.format.writer.write_dataset`, so the result passes
``medimeta verify`` and loads with every MedIMeta tool.
"""

from medimeta.convert.generic import convert_csv, convert_folder
from medimeta.convert.labels import TaskColumns
from medimeta.convert.medfmc import convert_medfmc
from medimeta.convert.medmnist import convert_medmnist
from medimeta.convert.table import SplitOptions

__all__ = [
    "SplitOptions",
    "TaskColumns",
    "convert_csv",
    "convert_folder",
    "convert_medfmc",
    "convert_medmnist",
]
