"""The validated inputs of one build: info, records, processing function, and their fingerprint."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from medimeta._version import __version__
from medimeta.catalog import DatasetSpec
from medimeta.errors import BuildError, FormatError
from medimeta.format import layout
from medimeta.format.record import SampleRecord
from medimeta.format.writer.files import append_info_keys, assemble_info, reserved_columns
from medimeta.format.writer.images import ProcessFn
from medimeta.format.writer.records import (
    check_records,
    fingerprint,
    process_identity,
    split_counts,
)


class BuildInputs:
    """Everything a build is given, checked before the first image is made."""

    def __init__(
        self,
        root: str | Path,
        info: Any,
        records: Sequence[SampleRecord],
        process: ProcessFn,
        extra_info: Mapping[str, Any] | None,
        build_tag: str,
    ) -> None:
        self.root = Path(root)
        self.records = records
        self.process = process
        self.build_tag = build_tag
        counts = split_counts(records)
        if isinstance(info, (str, Path)):
            self.info_text = append_info_keys(
                Path(info).read_text(encoding="utf-8"), extra_info or {}
            )
            info_dict = yaml.safe_load(self.info_text)
            if not isinstance(info_dict, Mapping):
                raise FormatError(str(info), "top level must be a mapping")
            self._check_copied_counts(info_dict, counts, str(info))
        else:
            info_dict, self.info_text = assemble_info(info, counts, extra_info)
        self.spec = DatasetSpec.from_info_dict(info_dict)
        size = layout.IMAGE_SIZE
        if self.spec.image_size != (size, size):
            raise FormatError(
                layout.INFO_FILE,
                "images must be 224x224",
                key="input_size",
                expected=[self.spec.num_channels, size, size],
                actual=list(self.spec.input_size),
            )
        self.checked = check_records(self.spec.tasks, records)
        self.reserved = reserved_columns(self.spec.tasks)
        self.record_columns: set[str] = set()
        for i, rec in enumerate(records):
            bad = self.reserved.intersection(rec.annotations)
            if bad:
                raise BuildError(f"record {i}: annotation column(s) {sorted(bad)} are reserved")
            self.record_columns.update(rec.annotations)
        self.license = ""
        self.extra_files: dict[str, Path | bytes] = {}
        self.aux_columns: dict[str, str] = {}
        self.produced_columns: set[str] = set()

    @staticmethod
    def _check_copied_counts(info: Mapping[str, Any], counts: Mapping[str, Any], path: str) -> None:
        for key, value in counts.items():
            given = info.get(key)
            if isinstance(value, dict) and isinstance(given, Mapping):
                given = {s: given.get(s, 0) for s in layout.SPLIT_NAMES}
            if given != value:
                raise FormatError(
                    path,
                    "the info file's counts differ from the records",
                    key=key,
                    expected=value,
                    actual=info.get(key),
                    fix="fix the info file or pass the info as a mapping",
                )

    def fingerprint(self) -> str:
        files = {
            rel: (
                f"bytes:{hashlib.sha256(c).hexdigest()}"
                if isinstance(c, bytes)
                else f"file:{c}:{c.stat().st_size}:{c.stat().st_mtime_ns}"
            )
            for rel, c in sorted(self.extra_files.items())
        }
        parts = {
            "medimeta": __version__,
            "info": self.info_text,
            "license": self.license,
            "process": process_identity(self.process),
            "build_tag": self.build_tag,
            "extra_files": files,
            "aux_columns": self.aux_columns,
        }
        return fingerprint(self.records, parts)
