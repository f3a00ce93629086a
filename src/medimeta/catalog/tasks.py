"""Typed, immutable records of tasks and source attributions (the vocabulary of the catalog).

Also the one home of what a task target is called (:meth:`TaskTarget.parse` for loose user
input, :meth:`TaskTarget.from_value` for the exact names metrics and result files use) and of
how stored labels are encoded (:meth:`TaskSpec.encode_labels`, :func:`labels_to_indices`).
numpy is imported only when labels are encoded, so reading the catalog stays light.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from medimeta.catalog.frozen import FrozenMap
from medimeta.errors import LabelError, UnknownNameError, check_choice

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import ArrayLike, NDArray

SPLIT_NAMES: tuple[str, ...] = ("train", "val", "test")
LABEL_ENCODINGS: tuple[str, ...] = ("metric", "key", "index")


class TaskTarget(str, enum.Enum):
    """Kind of a task's target, named as in info.yaml (TorchCross ``TaskTarget`` member names)."""

    MULTICLASS_CLASSIFICATION = "MULTICLASS_CLASSIFICATION"
    BINARY_CLASSIFICATION = "BINARY_CLASSIFICATION"
    MULTILABEL_CLASSIFICATION = "MULTILABEL_CLASSIFICATION"
    ORDINAL_REGRESSION = "ORDINAL_REGRESSION"

    def __str__(self) -> str:
        return self.value

    @property
    def short(self) -> str:
        """Short name: ``multiclass``, ``binary``, ``multilabel`` or ``ordinal``."""
        return _SHORT_NAMES[self]

    @classmethod
    def parse(cls, value: str | TaskTarget) -> TaskTarget:
        """Accept a member, its name (``BINARY_CLASSIFICATION``) or short name (``binary``)."""
        if isinstance(value, TaskTarget):
            return value
        if isinstance(value, str):
            wanted = _normalise(value)
            for member in cls:
                if wanted in (_normalise(member.value), member.short):
                    return member
        choices = [m.value for m in cls] + [m.short for m in cls]
        raise UnknownNameError("task target", str(value), choices)

    @classmethod
    def from_value(cls, value: object) -> TaskTarget:
        """Accept a member or exactly its value (``"BINARY_CLASSIFICATION"``), nothing looser.

        The strict form metrics, heads, losses and prediction files take. An object with a
        ``value`` attribute (another library's enum) counts as that value. Raises
        UnknownNameError listing the four values for anything else.
        """
        if isinstance(value, TaskTarget):
            return value
        text = getattr(value, "value", value)
        if isinstance(text, str):
            for member in cls:
                if text == member.value:
                    return member
        raise UnknownNameError("task target", str(text), [m.value for m in cls])


def _normalise(text: str) -> str:
    # "Multi-Label", "multi_label" and "MULTILABEL" all mean the same thing.
    return re.sub(r"[\s_\-]", "", text).lower()


_SHORT_NAMES: dict[TaskTarget, str] = {
    TaskTarget.MULTICLASS_CLASSIFICATION: "multiclass",
    TaskTarget.BINARY_CLASSIFICATION: "binary",
    TaskTarget.MULTILABEL_CLASSIFICATION: "multilabel",
    TaskTarget.ORDINAL_REGRESSION: "ordinal",
}


def labels_to_indices(labels: ArrayLike, keys: Sequence[int]) -> NDArray[np.int64]:
    """Map raw label keys to their positions in ``keys`` (e.g. ordinal {0,1,4,6} -> 0..3).

    Pass ``keys`` in rank order (for ordinal tasks, ascending). Unknown labels raise LabelError.
    """
    import numpy as np

    arr = np.asarray(labels)
    key_arr = np.asarray(list(keys))
    if key_arr.size == 0 or np.unique(key_arr).size != key_arr.size:
        raise LabelError(f"label keys must be unique and non-empty; got {key_arr.tolist()}")
    order = np.argsort(key_arr, kind="stable")
    pos = np.searchsorted(key_arr[order], arr)
    pos = np.clip(pos, 0, key_arr.size - 1)
    found = key_arr[order][pos] == arr
    if not np.all(found):
        unknown = sorted(np.unique(arr[~found]).tolist())
        raise LabelError(
            f"labels {unknown[:10]} are not among the task's keys {key_arr.tolist()}; "
            "fix: pass the task's label keys (info.yaml 'labels') in rank order"
        )
    return order[pos].astype(np.int64)


@dataclass(frozen=True, repr=False)
class TaskSpec:
    """One task of one dataset: its target kind and its label dictionary (int key -> name).

    ``labels`` keeps the info.yaml order. Keys are the values stored in ``task_labels/*.npy``;
    ordinal tasks may have non-contiguous keys (e.g. 0, 1, 4, 6, 8, 10), so use
    :meth:`key_to_index` to get a class position.
    """

    dataset_id: str
    name: str
    target: TaskTarget
    labels: Mapping[int, str]

    def __post_init__(self) -> None:
        object.__setattr__(self, "target", TaskTarget.parse(self.target))
        labels = FrozenMap(self.labels)
        where = f"task {self.dataset_id}:{self.name}"
        if not labels:
            raise LabelError(f"{where}: labels must not be empty")
        for key, value in labels.items():
            if isinstance(key, bool) or not isinstance(key, int) or not isinstance(value, str):
                raise LabelError(f"{where}: labels must map int -> str; got {key!r}: {value!r}")
        object.__setattr__(self, "labels", labels)

    def __hash__(self) -> int:
        return hash((self.dataset_id, self.name, self.target, self.labels))

    def __repr__(self) -> str:
        return f"TaskSpec({self.identifier!r}, {self.target.short}, {self.num_classes} classes)"

    @cached_property
    def keys(self) -> tuple[int, ...]:
        """Label keys in ascending order."""
        return tuple(sorted(self.labels))

    @property
    def num_classes(self) -> int:
        """Number of classes (for multi-label tasks: number of labels)."""
        return len(self.labels)

    @property
    def is_contiguous(self) -> bool:
        """True when the keys are exactly 0..C-1."""
        return self.keys == tuple(range(self.num_classes))

    @property
    def identifier(self) -> str:
        """``"<dataset_id>:<task name>"``, the form :meth:`Catalog.parse_task_id` reads."""
        return f"{self.dataset_id}:{self.name}"

    @property
    def class_names(self) -> tuple[str, ...]:
        """Label names in ascending key order (index i names class position i)."""
        return tuple(self.labels[k] for k in self.keys)

    @cached_property
    def _positions(self) -> dict[int, int]:
        return {key: i for i, key in enumerate(self.keys)}

    def key_to_index(self, key: int) -> int:
        """Position of a stored label key among the sorted keys."""
        try:
            # int() accepts numpy integers from task_labels/*.npy; the equality rejects 4.5.
            if not isinstance(key, bool) and int(key) == key:
                return self._positions[int(key)]
        except (KeyError, TypeError, ValueError):
            pass
        raise LabelError(
            f"task {self.identifier}: label key {key!r} is not one of {list(self.keys)}"
        )

    def index_to_key(self, index: int) -> int:
        """Stored label key of class position ``index`` (inverse of :meth:`key_to_index`)."""
        try:
            if not isinstance(index, bool) and int(index) == index and 0 <= index < len(self.keys):
                return self.keys[int(index)]
        except (TypeError, ValueError):
            pass
        last = self.num_classes - 1
        raise LabelError(f"task {self.identifier}: class index {index!r} is outside 0..{last}")

    def encode_labels(self, raw: np.ndarray, encoding: str = "metric") -> np.ndarray:
        """Stored labels (``task_labels/<task>.npy``, global order) in one of three encodings.

        * ``"metric"``, what the losses and ``compute_metrics`` take: multi-class and ordinal
          as class indices 0..C-1 (keys mapped in rank order; unknown keys raise LabelError),
          binary 0/1 (N,), multi-label multi-hot (N, C); all int64.
        * ``"key"``, what the datasets hand out (as medimeta 0.0.6): as stored, binary (N, 1).
        * ``"index"``: as ``"key"``, but ordinal keys replaced by their positions 0..C-1.
        """
        import numpy as np

        check_choice("label encoding", encoding, LABEL_ENCODINGS)
        binary = self.target is TaskTarget.BINARY_CLASSIFICATION
        if encoding == "metric":
            if binary:
                return raw.reshape(-1).astype(np.int64)
            if self.target is TaskTarget.MULTILABEL_CLASSIFICATION:
                return raw.astype(np.int64)
            return labels_to_indices(raw, self.keys)
        if binary:
            return raw.reshape(-1, 1)
        if self.target is TaskTarget.ORDINAL_REGRESSION and encoding == "index":
            lookup = np.full(max(self.keys) + 1, -1, dtype=np.int64)
            lookup[list(self.keys)] = np.arange(len(self.keys))
            return lookup[raw]
        return raw


@dataclass(frozen=True, repr=False)
class SourceRecord:
    """Attribution of one source data set (an item of info.yaml ``original_data``).

    ``citations`` is a tuple when the release file has a list and a read-only mapping when it
    has a mapping (keys such as ``data``/``paper``). Extra URL keys (``url2``,
    ``download_url1``, ``code_url`` ...) are kept in ``extra`` in file order.
    """

    name: str
    title: str
    url: str
    license: str
    authors: str
    paper_title: str | None = None
    paper_url: str | None = None
    citations: tuple[str, ...] | Mapping[str, str] = ()
    extra: Mapping[str, str] = field(default_factory=FrozenMap)

    def __post_init__(self) -> None:
        if isinstance(self.citations, Mapping):
            object.__setattr__(self, "citations", FrozenMap(self.citations))
        else:
            object.__setattr__(self, "citations", tuple(self.citations))
        object.__setattr__(self, "extra", FrozenMap(self.extra))

    def __hash__(self) -> int:
        return hash((self.name, self.title, self.url, self.citations, self.extra))

    def __repr__(self) -> str:
        return f"SourceRecord({self.name!r}, license={self.license!r})"

    @property
    def citation_texts(self) -> tuple[str, ...]:
        """All citation strings, whether stored as a list or a mapping."""
        if isinstance(self.citations, Mapping):
            return tuple(self.citations.values())
        return tuple(self.citations)

    def to_info_dict(self) -> dict[str, Any]:
        """The ``original_data`` item, keys in release order (extras follow ``url``)."""
        out: dict[str, Any] = {"name": self.name, "title": self.title, "url": self.url}
        out.update(self.extra)
        out["license"] = self.license
        out["authors"] = self.authors
        if self.paper_title is not None:
            out["paper_title"] = self.paper_title
        if self.paper_url is not None:
            out["paper_url"] = self.paper_url
        if isinstance(self.citations, Mapping):
            out["citations"] = dict(self.citations)
        else:
            out["citations"] = list(self.citations)
        return out
