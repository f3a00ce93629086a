"""The identity of every image of a dataset: one sha256 per stored image (its shape and pixels).

The feature cache keys features by these digests, so features are shared by every split,
episode file, task and command that reads the same image, and a dataset rebuilt with the same
pixels (in any order) finds them again. Digests of a folder's ``images.hdf5`` are computed
once (reading it in blocks) and memoised in ``<cache>/digests/`` under the file's size,
modification time and inode: an edited file is read again. A memo is used only when it
holds one digest per image of the file and matches the sha256 recorded with it; any other
memo (damaged, edited, cut short) is computed again with one warning line.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import h5py
import numpy as np

import medimeta.safeio as safeio
from medimeta.format import layout

DIGEST_BYTES = 32


class CacheIntegrityWarning(UserWarning):
    """A cache file does not match its recorded key or digest; its content is recomputed."""


BLOCK = 256  # images read per block while hashing


def _stamp(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino}


def hash_images(path: Path) -> np.ndarray:
    """(N, 32) uint8: sha256 of each image's shape and bytes in ``images.hdf5`` at ``path``."""
    with h5py.File(path, "r") as f:
        images = f[layout.HDF5_KEY]
        n = int(images.shape[0])
        shape = json.dumps(list(images.shape[1:])).encode()
        out = np.empty((n, DIGEST_BYTES), np.uint8)
        for start in range(0, n, BLOCK):
            block = np.ascontiguousarray(images[start : start + BLOCK])
            for i, image in enumerate(block):
                digest = hashlib.sha256(shape)
                digest.update(image.tobytes())
                out[start + i] = np.frombuffer(digest.digest(), np.uint8)
    return out


def image_digests(folder: Path, memo_dir: Path | None = None) -> np.ndarray:
    """The per-image digests of a dataset folder (memoised in ``memo_dir`` when given)."""
    path = (Path(folder) / layout.HDF5_FILE).resolve()
    stamp = _stamp(path)
    memo = None
    if memo_dir is not None:
        name = hashlib.sha256(str(path).encode()).hexdigest()[:16]
        memo = memo_dir / "digests" / f"{Path(folder).name}-{name}.h5"
        found = _read_memo(memo, stamp)
        if found is not None:
            return found
    digests = hash_images(path)
    if memo is not None:
        with safeio.atomic_path(memo) as tmp, h5py.File(tmp, "w") as f:
            f.create_dataset("digests", data=digests)
            f.attrs["stamp"] = json.dumps(stamp, sort_keys=True)
            f.attrs["images"] = str(path)
            f.attrs["count"] = len(digests)
            f.attrs["digests_sha256"] = hashlib.sha256(digests.tobytes()).hexdigest()
    return digests


def _image_count(images: Path) -> int:
    with h5py.File(images, "r") as f:
        return int(f[layout.HDF5_KEY].shape[0])


def _read_memo(memo: Path, stamp: dict[str, int]) -> np.ndarray | None:
    if not memo.is_file():
        return None
    try:
        with h5py.File(memo, "r") as f:
            if json.loads(str(f.attrs["stamp"])) != stamp:
                return None  # the images changed: computed again, nothing is wrong
            digests = np.asarray(f["digests"][...], np.uint8)
            recorded = str(f.attrs["digests_sha256"])
            images = Path(str(f.attrs["images"]))
        count = _image_count(images)
        if digests.shape != (count, DIGEST_BYTES):
            raise ValueError(f"it holds {digests.shape[0]} digests for {count} images")
        if hashlib.sha256(np.ascontiguousarray(digests).tobytes()).hexdigest() != recorded:
            raise ValueError("its digests do not match their recorded sha256")
    except (OSError, KeyError, ValueError) as exc:
        warnings.warn(
            f"{memo}: image digest memo ignored, the digests are computed again ({exc})",
            CacheIntegrityWarning,
            stacklevel=3,
        )
        return None
    return digests
