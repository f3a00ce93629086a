"""MedFMC (MedFM challenge) -> MedIMeta format: ChestDR, ColonPath and Endo.

Expected layout (as distributed and used by openmedlab/MedFM)::

    <dir>/images/...             image files
    <dir>/trainval.txt           the public training pool
    <dir>/test_WithLabel.txt     the labelled test set

List lines are ``<file name> <labels>``; file names may contain spaces, so labels are taken
from the end of the line: chest ``name.png 1,0,...,0`` (19 values), endo ``name.png 1 0 0 1``,
colon ``name with spaces.png 0``.

Splits: original split ``train`` (trainval.txt) and ``test`` (test_WithLabel.txt); MedIMeta
splits keep test and move ``holdout`` (15 %) of the training *studies* to val (a study never
spans two splits). The study id is kept in ``patient_id``: MedFM's own rule for few-shot
sampling (colon: file name without its last 9 characters; endo: its first 18 characters;
chest: one image per patient, the file name).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medimeta.catalog import TaskTarget
from medimeta.convert.labels import InterpretedTask
from medimeta.convert.table import SplitOptions, TableSource, write_table
from medimeta.errors import LabelError, SourceTreeError, UnknownNameError

MEDFMC_URL = "https://github.com/openmedlab/MedFM"


def _study_chest(name: str) -> str:
    return name  # one radiograph per patient


def _study_endo(name: str) -> str:
    return name[:18] or name  # MedFM: the first 18 characters name the study


def _study_colon(name: str) -> str:
    return name[:-9] or name  # MedFM: the slide id is the name without its last 9 characters


@dataclass(frozen=True)
class MedFMCInfo:
    """One MedFMC dataset: task, labels, channels and its study-id rule."""

    key: str
    name: str
    task_name: str
    target: TaskTarget
    labels: tuple[str, ...]
    channels: int
    domain: str
    study: Callable[[str], str]
    multilabel_separator: str  # between label values on a line ("," or " ")


MEDFMC = {
    "chest": MedFMCInfo(
        "chest", "MedFMC ChestDR", "thoracic findings", TaskTarget.MULTILABEL_CLASSIFICATION,
        ("pleural_effusion", "nodule", "pneumonia", "cardiomegaly", "hilar_enlargement",
         "fracture_old", "fibrosis", "aortic_calcification", "tortuous_aorta",
         "thickened_pleura", "TB", "pneumothorax", "emphysema", "atelectasis", "calcification",
         "pulmonary_edema", "increased_lung_markings", "elevated_diaphragm", "consolidation"),
        1, "Chest X-ray", _study_chest, ",",
    ),
    "endo": MedFMCInfo(
        "endo", "MedFMC Endo", "lesion types", TaskTarget.MULTILABEL_CLASSIFICATION,
        ("ulcer", "erosion", "polyp", "tumor"), 3, "Colonoscopy", _study_endo, " ",
    ),
    "colon": MedFMCInfo(
        "colon", "MedFMC ColonPath", "tumour tissue", TaskTarget.BINARY_CLASSIFICATION,
        ("non-tumour tissue", "tumour tissue"), 3, "Histopathology",
        _study_colon, " ",
    ),
}  # fmt: skip
LISTS = {"train": "trainval.txt", "test": "test_WithLabel.txt"}


def parse_line(info: MedFMCInfo, line: str, where: str) -> tuple[str, Any]:
    """File name and label of one list line (names may contain spaces)."""
    text = line.strip()
    multilabel = info.target is TaskTarget.MULTILABEL_CLASSIFICATION
    count = len(info.labels) if multilabel and info.multilabel_separator == " " else 1
    parts = text.rsplit(None, count)
    if len(parts) != count + 1:
        raise LabelError(f"{where}: expected '<file> <labels>', got {text!r}")
    name, fields = parts[0], parts[1:]
    if multilabel and info.multilabel_separator == ",":
        fields = fields[0].split(",")
    if any(f not in ("0", "1") for f in fields) or len(fields) != (
        len(info.labels) if multilabel else 1
    ):
        expected = f"{len(info.labels)} values 0/1" if multilabel else "one label 0/1"
        raise LabelError(f"{where}: expected {expected} after the file name, got {text!r}")
    values = [int(f) for f in fields]
    return name, values if multilabel else values[0]


def read_list(list_path: Path) -> list[str]:
    """The lines of one annotation list; SourceTreeError naming the file when unreadable."""
    if not list_path.is_file():
        raise SourceTreeError(
            f"{list_path}: annotation list missing (expected {list(LISTS.values())})"
        )
    try:
        return list_path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise SourceTreeError(
            f"{list_path}: not UTF-8 text (byte {exc.start}: {exc.reason}); expected lines "
            "'<file> <labels>'; nothing was written; fix: save the list as UTF-8"
        ) from None


def convert_medfmc(
    src: str | Path,
    root: str | Path,
    *,
    dataset: str | None = None,
    dataset_id: str | None = None,
    image_dir: str = "images",
    holdout: float = 0.15,
    seed: int = 42,
    **options: Any,
) -> Path:
    """Convert one MedFMC dataset folder into ``<root>/<id>`` (default id ``medfmc_<name>``).

    ``dataset``: chest, endo or colon (default: the folder name). ``options`` go to
    :func:`medimeta.convert.table.write_table` (fit, workers, overwrite, resume, progress...).
    """
    base = Path(src)
    key = (dataset or base.name).lower()
    if key not in MEDFMC:
        raise UnknownNameError("MedFMC dataset (pass dataset=/--dataset)", key, MEDFMC)
    info = MEDFMC[key]
    paths: list[str] = []
    labels: list[Any] = []
    splits: list[str] = []
    where: list[str] = []
    seen: dict[str, tuple[str, Any]] = {}
    for split, list_name in LISTS.items():
        list_path = base / list_name
        for number, line in enumerate(read_list(list_path), 1):
            if not line.strip():
                continue
            name, label = parse_line(info, line, f"{list_path}:{number}")
            if name in seen:
                if seen[name] == (split, label):
                    continue  # the same line twice: harmless
                raise LabelError(
                    f"{list_path}:{number}: {name!r} is also listed in {LISTS[seen[name][0]]} "
                    f"(or with another label); each image may appear once"
                )
            seen[name] = (split, label)
            paths.append(f"{image_dir}/{name}" if image_dir else name)
            labels.append(label)
            splits.append(split)
            where.append(f"{list_path}:{number} ({name})")
    task = InterpretedTask(info.task_name, info.target, dict(enumerate(info.labels)), labels)
    source = TableSource(
        base_dir=base.resolve(),
        paths=paths,
        tasks=[task],
        subjects=[info.study(Path(p).name) for p in paths],
        source_splits=splits,
        origin=str(base),
        description=f"{info.name} from the MedFMC benchmark ({MEDFMC_URL}).",
        kind="medfmc",
        details={"dataset": key, "lists": dict(LISTS)},
        row_names=where,
    )
    options.setdefault("channels", info.channels)
    options.setdefault("domain", info.domain)
    options.setdefault("name", info.name)
    options.setdefault("license", "unspecified (see the MedFMC data terms of use)")
    options["split_options"] = SplitOptions(holdout=holdout, seed=seed)
    return write_table(source, root, dataset_id or f"medfmc_{key}", **options)
