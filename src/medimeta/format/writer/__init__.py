"""Write a dataset folder in the MedIMeta release format, in parallel, resumably, atomically.

:func:`write_dataset` (``build``) drives one build: the validated inputs (``inputs``, label and
record checks in ``records``), image production into ``images.hdf5`` and TIFF files
(``images``), the text and array files (``files``) and the hidden staging folder with its
journal and the final rename (``stage``).
"""

from medimeta.format.record import SampleRecord
from medimeta.format.writer.build import default_workers, write_dataset
from medimeta.format.writer.images import ProcessFn

__all__ = ["ProcessFn", "SampleRecord", "default_workers", "write_dataset"]
