"""The audit's cache: descriptors per dataset and pair summaries, keyed by content fingerprints.

Layout under ``DIR`` (``--cache``, else ``$MEDIMETA_CACHE``, else ``<data root>/.cache``, the
folder the embedding cache uses too)::

    audit/stamps.json                        images.hdf5 path -> size, mtime, inode, fingerprint
    audit/<id>/descriptors-<fp16>.h5         thumbs (N,32,32) f2, hashes (N,16) u1, boxes (N,4)
    audit/shared/<a>--<b>-<key16>.json       summary of one cross-dataset comparison

The fingerprint is computed from the pixels while the descriptors are (see
:func:`medimeta.audit.descriptors.compute_descriptors`); ``stamps.json`` remembers it by the
file's size, modification time and inode, so an unchanged dataset is not read again. A rebuilt
dataset gets a new stamp, hence new descriptors. Every file is written atomically
(:mod:`medimeta.safeio`); no pickle.
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from pathlib import Path
from typing import Any

import h5py
import numpy as np

import medimeta.safeio as safeio
from medimeta.audit import descriptors as D
from medimeta.format import layout
from medimeta.format.reader import DatasetFolder


def _safe(name: str) -> str:
    return re.sub(r"[^0-9A-Za-z_.-]", "_", name)[:80]


class AuditCache:
    """Descriptor files and pair summaries in ``directory/audit`` (``persist=False``, or a
    folder that cannot be written: nothing is stored)."""

    def __init__(self, directory: str | Path, *, persist: bool = True) -> None:
        self.directory = Path(directory) / "audit"
        self.persist = persist and self._writable()

    def _writable(self) -> bool:
        return safeio.writable_cache(self.directory, "audit cache")

    # -- stamps ---------------------------------------------------------------------------
    @staticmethod
    def _stamp(folder: Path) -> tuple[str, dict[str, int]]:
        path = (folder / layout.HDF5_FILE).resolve()
        st = path.stat()
        return str(path), {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino}

    def _stamps(self) -> dict[str, Any]:
        path = self.directory / "stamps.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def known_fingerprint(self, folder: Path) -> str | None:
        """The fingerprint remembered for ``folder``'s unchanged images.hdf5, else None."""
        if not self.persist:
            return None
        key, stamp = self._stamp(folder)
        entry = self._stamps().get(key)
        if isinstance(entry, dict) and {k: entry.get(k) for k in stamp} == stamp:
            return str(entry.get("fingerprint"))
        return None

    def _remember(self, folder: Path, fingerprint: str) -> None:
        key, stamp = self._stamp(folder)
        stamps = self._stamps()
        stamps[key] = {**stamp, "fingerprint": fingerprint}
        safeio.write_json(self.directory / "stamps.json", stamps, sort_keys=True)

    # -- descriptors ----------------------------------------------------------------------
    def descriptor_path(self, dataset_id: str, fingerprint: str) -> Path:
        return self.directory / _safe(dataset_id) / f"descriptors-{fingerprint[:16]}.h5"

    def _read(self, path: Path, dataset_id: str, fingerprint: str) -> D.Descriptors | None:
        try:
            with h5py.File(path, "r") as f:
                ok = f.attrs.get("fingerprint") == fingerprint and json.loads(
                    str(f.attrs.get("params", "{}"))
                ) == json.loads(json.dumps(D.params()))
                if not ok:
                    return None
                return D.Descriptors(
                    dataset_id,
                    fingerprint,
                    np.asarray(f["thumbs"][...], np.float16),
                    np.asarray(f["hashes"][...], np.uint8),
                    np.asarray(f["boxes"][...], np.int16),
                    from_cache=True,
                )
        except (OSError, KeyError, ValueError) as exc:
            warnings.warn(f"{path}: unreadable audit cache file ignored ({exc})", stacklevel=2)
            return None

    def _write(self, desc: D.Descriptors) -> None:
        path = self.descriptor_path(desc.dataset_id, desc.fingerprint)
        with safeio.atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
            f.create_dataset("thumbs", data=desc.thumbs)
            f.create_dataset("hashes", data=desc.hashes)
            f.create_dataset("boxes", data=desc.boxes)
            f.attrs["fingerprint"] = desc.fingerprint
            f.attrs["dataset_id"] = desc.dataset_id
            f.attrs["params"] = json.dumps(D.params(), sort_keys=True)

    def descriptors(self, folder: DatasetFolder, log: D.Log | None = None) -> D.Descriptors:
        """The folder's descriptors: from the cache when its images are unchanged, else
        computed (and stored)."""
        known = self.known_fingerprint(folder.path)
        if known is not None:
            path = self.descriptor_path(folder.id, known)
            if path.is_file():
                got = self._read(path, folder.id, known)
                if got is not None and len(got) == folder.num_samples:
                    return got
        desc = D.compute_descriptors(folder, log=log)
        if self.persist:
            self._write(desc)
            self._remember(folder.path, desc.fingerprint)
        return desc

    # -- pair summaries -------------------------------------------------------------------
    def summary_path(self, a: str, b: str, key: dict[str, Any]) -> Path:
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        return self.directory / "shared" / f"{_safe(a)}--{_safe(b)}-{digest}.json"

    def read_summary(self, a: str, b: str, key: dict[str, Any]) -> dict[str, Any] | None:
        if not self.persist:
            return None
        path = self.summary_path(a, b, key)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("key") != key:
            return None
        return data

    def write_summary(self, a: str, b: str, key: dict[str, Any], summary: dict[str, Any]) -> None:
        if self.persist:
            safeio.write_json(self.summary_path(a, b, key), {**summary, "key": key})
