"""Helpers of the download tests: release-layout zips, the CLI harness, leftover checks."""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path

import typer
import yaml

from fixtures.release import ToySpec, ToyTask, make_release_dataset

SMALL_SPLITS = {"train": 4, "val": 1, "test": 1}

BUS_TASKS = (
    ToyTask(
        "case category", "MULTICLASS_CLASSIFICATION", {0: "normal", 1: "benign", 2: "malignant"}
    ),
    ToyTask(
        "malignancy", "BINARY_CLASSIFICATION", {0: "no malignant finding", 1: "malignant finding"}
    ),
)


def make_dataset_folder(parent: Path, dataset_id: str, *, seed: int = 0) -> Path:
    """A valid 6-sample dataset folder; ``bus`` gets the real bus tasks and ``partial: true``."""
    if dataset_id == "bus":
        spec = ToySpec(
            dataset_id="bus",
            splits=dict(SMALL_SPLITS),
            tasks=BUS_TASKS,
            seed=seed,
            name="Breast Ultrasound",
            domain="Breast ultrasound",
        )
    else:
        spec = ToySpec(dataset_id=dataset_id, splits=dict(SMALL_SPLITS), seed=seed)
    folder = make_release_dataset(parent, spec)
    if dataset_id == "bus":
        # 6 of the 780 samples: marked as a partial copy so `verify` accepts the count.
        info_path = folder / "info.yaml"
        info = yaml.safe_load(info_path.read_text())
        info["partial"] = True
        info_path.write_text(yaml.safe_dump(info, sort_keys=False))
    return folder


def zip_folder(folder: Path, *, top: str | None) -> bytes:
    """Zip ``folder`` (stored, sorted) with its files under ``top/`` or at the zip's top."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        if top:
            zf.writestr(f"{top}/", b"")
        for path in sorted(folder.rglob("*")):
            rel = path.relative_to(folder).as_posix()
            name = f"{top}/{rel}" if top else rel
            if path.is_dir():
                zf.writestr(name + "/", b"")
            else:
                zf.write(path, name)
    return buf.getvalue()


def dataset_zip(dataset_id: str, *, top_folder: bool = True, seed: int = 0) -> bytes:
    """The release zip of a generated dataset, with or without the ``<id>/`` top folder."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = make_dataset_folder(Path(tmp), dataset_id, seed=seed)
        return zip_folder(folder, top=dataset_id if top_folder else None)


def add_members(
    data: bytes, members: dict[str, bytes], links: dict[str, str] | None = None
) -> bytes:
    """A copy of zip ``data`` with extra (possibly malicious) members and symbolic links."""
    src = zipfile.ZipFile(io.BytesIO(data))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for info in src.infolist():
            zf.writestr(info, src.read(info))
        for name, content in members.items():
            zf.writestr(zipfile.ZipInfo(name), content)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o120777 << 16) | 0
            zf.writestr(info, target.encode())
    return buf.getvalue()


def assert_nothing_installed(root: Path, dataset_id: str) -> None:
    """No dataset folder, no extracted file, no staging leftovers after a failed install."""
    assert not (root / dataset_id).exists(), f"{root / dataset_id} exists after a failed install"
    leftovers = sorted(str(p) for p in root.rglob("info.yaml"))
    assert not leftovers, f"extracted files left behind: {leftovers}"
    staging = root / ".medimeta" / "staging"
    if staging.is_dir():
        assert not [p for p in staging.iterdir() if p.is_dir()], list(staging.iterdir())


def cli_app() -> typer.Typer:
    """The download command mounted as ``download``, as the real app mounts it."""
    from medimeta.cli.download import download_command

    app = typer.Typer()
    app.command("download")(download_command)

    @app.callback()
    def main() -> None:
        """Test harness."""

    return app
