"""Staging never accumulates: lost races, publish-time clashes and crash leftovers.

Each test makes one such situation happen for real (threads and locks, no mocks of the
result) and checks that no hidden staging folder, cache or source copy is left behind, and
that nothing that belongs to the user is lost.
"""

from __future__ import annotations

import io
import shutil
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from filelock import FileLock

from fixtures.release import ToySpec, make_release_dataset
from fixtures.writing import SLOW_INFO, make_npz, slow_image, slow_records
from medimeta.errors import DatasetExistsError, DownloadError
from medimeta.format.writer import build, write_dataset

ID = str(SLOW_INFO["id"])


def _partials(root: Path, dataset_id: str = ID) -> list[Path]:
    return sorted(root.glob(f".{dataset_id}.partial-*"))


def _in_thread(work: Callable[[], object]) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # handed to the test thread
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, errors


def _spy(monkeypatch: pytest.MonkeyPatch, owner: object, name: str) -> threading.Event:
    """An event set when ``owner.name`` is first called (the call goes through unchanged)."""
    reached = threading.Event()
    real = getattr(owner, name)

    def spy(*args: object, **kwargs: object) -> object:
        reached.set()
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, spy)
    return reached


def test_build_that_lost_the_lock_race_leaves_no_staging(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "root"
    lock = root / ".medimeta" / "locks" / f"build-{ID}.lock"
    lock.parent.mkdir(parents=True)
    holder = FileLock(str(lock))
    holder.acquire()  # the winner is building
    waiting = _spy(monkeypatch, build, "staging_dir")  # computed just before the lock
    thread, errors = _in_thread(lambda: write_dataset(root, SLOW_INFO, slow_records(9), slow_image))
    assert waiting.wait(60)
    time.sleep(0.3)  # the loser now waits on the lock
    winner = write_dataset(tmp_path / "elsewhere", SLOW_INFO, slow_records(9), slow_image)
    shutil.move(str(winner), str(root / ID))  # ... and the winner publishes
    holder.release()
    thread.join(60)
    assert len(errors) == 1 and isinstance(errors[0], DatasetExistsError), errors
    assert f"{root / ID} already exists" in str(errors[0])
    assert _partials(root) == []
    assert (root / ID / "info.yaml").is_file()  # the winner's dataset is untouched


def test_target_taken_at_publishing_time_removes_own_staging(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = build._Build._finish

    def finish_then_someone_publishes(self: build._Build, verify: bool) -> None:
        real(self, verify)
        (self.root / self.spec.id).mkdir()
        (self.root / self.spec.id / "theirs.txt").write_text("another writer's dataset")

    monkeypatch.setattr(build._Build, "_finish", finish_then_someone_publishes)
    with pytest.raises(DatasetExistsError, match="already exists"):
        write_dataset(tmp_path, SLOW_INFO, slow_records(6), slow_image)
    assert _partials(tmp_path) == []
    assert (tmp_path / ID / "theirs.txt").read_text() == "another writer's dataset"


def test_crash_leftovers_of_other_inputs_are_removed(tmp_path: Path) -> None:
    stale = tmp_path / f".{ID}.partial-0123456789abcdef"
    (stale / ID).mkdir(parents=True)
    (stale / ID / "images.hdf5").write_bytes(b"\0" * 4096)  # a killed build of other inputs
    write_dataset(tmp_path, SLOW_INFO, slow_records(6), slow_image)
    assert _partials(tmp_path) == [] and (tmp_path / ID / "info.yaml").is_file()


def test_source_staging_left_by_a_killed_build_is_removed(tmp_path: Path) -> None:
    from fakes.bus import make_busi
    from medimeta.builders import build_dataset

    make_busi(tmp_path / "src", per_class=2)
    root = tmp_path / "root"
    build_dataset("bus", tmp_path / "src", root=root, partial=True)
    leftover = root / ".bus.source-staging" / "Dataset_BUSI_with_GT"
    leftover.mkdir(parents=True)
    (leftover / "big.png").write_bytes(b"\0" * 10_000)
    with pytest.raises(DatasetExistsError, match="already exists"):
        build_dataset("bus", tmp_path / "src", root=root, partial=True)
    assert not (root / ".bus.source-staging").exists()
    assert _partials(root, "bus") == []


def test_medmnist_cache_of_a_killed_conversion_is_removed(tmp_path: Path) -> None:
    from medimeta.convert.medmnist import convert_medmnist

    root = tmp_path / "root"
    orphan = root / ".medimeta" / "cache" / "medmnist-0123456789abcdef"
    orphan.mkdir(parents=True)
    (orphan / "train_images.npy").write_bytes(b"\0" * 10_000)
    busy = root / ".medimeta" / "cache" / "medmnist-fedcba9876543210"
    busy.mkdir()
    locks = root / ".medimeta" / "locks"
    locks.mkdir(parents=True)
    in_use = FileLock(str(locks / f"cache-{busy.name}.lock"))
    in_use.acquire()  # a conversion running in another process
    try:
        make_npz(tmp_path / "pneumoniamnist.npz", size=28, channels=1, counts=(4, 2, 2))
        with pytest.warns(UserWarning, match="counts differ"):
            convert_medmnist(tmp_path / "pneumoniamnist.npz", root)
    finally:
        in_use.release()
    assert not orphan.exists() and busy.is_dir()
    assert sorted(p.name for p in (root / ".medimeta" / "cache").iterdir()) == [busy.name]


def test_failed_conversion_leaves_no_cache(tmp_path: Path) -> None:
    from medimeta.convert.medmnist import convert_medmnist

    path = tmp_path / "pneumoniamnist.npz"
    make_npz(path, size=28, channels=1, counts=(4, 2, 2))
    buf = io.BytesIO()
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(buf, "w") as dst:
        for info in src.infolist():  # the last image array is cut short: found once extracted
            data = src.read(info)
            dst.writestr(info, data[:-500] if info.filename == "test_images.npy" else data)
    path.write_bytes(buf.getvalue())
    with pytest.raises(ValueError, match="not a readable MedMNIST .npz .* key: test_images"):
        convert_medmnist(path, tmp_path / "root")
    assert not (tmp_path / "root" / ".medimeta" / "cache").exists()
    assert not list((tmp_path / "root").glob(".*.partial-*"))


def _zip_folder(folder: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                zf.write(p, f"{folder.name}/{p.relative_to(folder).as_posix()}")
    return buf.getvalue()


def test_install_waits_for_a_build_and_never_replaces_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from medimeta.fetch import MARKER, ensure_dataset
    from medimeta.fetch import install as install_module

    spec = ToySpec(dataset_id="toy_a", splits={"train": 4, "val": 1, "test": 1})
    zips = tmp_path / "zips"
    zips.mkdir()
    (zips / "toy_a.zip").write_bytes(_zip_folder(make_release_dataset(tmp_path / "src", spec)))
    root = tmp_path / "root"
    lock = root / ".medimeta" / "locks" / "build-toy_a.lock"
    lock.parent.mkdir(parents=True)
    holder = FileLock(str(lock))
    holder.acquire()  # `medimeta build toy_a` is running
    extracted = _spy(monkeypatch, install_module, "check_archive_id")
    thread, errors = _in_thread(
        lambda: ensure_dataset(root, "toy_a", offline=True, from_dir=zips, quiet=True)
    )
    assert extracted.wait(60)
    time.sleep(0.3)  # the install now waits for the build lock
    (root / "toy_a").mkdir()
    (root / "toy_a" / "built.txt").write_text("the user's own build")  # the build publishes
    holder.release()
    thread.join(60)
    assert len(errors) == 1 and isinstance(errors[0], DownloadError), errors
    assert "not a completed download" in str(errors[0])
    assert (root / "toy_a" / "built.txt").read_text() == "the user's own build"
    assert not (root / "toy_a" / MARKER).exists()
    staging = root / ".medimeta" / "staging"
    assert not [p for p in staging.rglob("*") if p.is_dir()]
