"""Where an ``hf:`` backbone's files are: a local folder, or a snapshot in the Hugging Face cache.

``hf:SOURCE[@pool=POOL]``: SOURCE is a model folder (``save_pretrained`` output, an open_clip
or a timm hub folder), a named model (``dinov2_vitb14``) or a hub id (``facebook/dinov2-base``).
Named models and hub ids are looked up in the hub cache only (``$HF_HUB_CACHE``, else
``$HF_HOME/hub``, else ``$XDG_CACHE_HOME/huggingface/hub``, else ``~/.cache/huggingface/hub``),
by reading the cache's own layout (``models--ORG--NAME/refs``, ``snapshots/COMMIT``): nothing
here touches the network, so a model that is not there fails at once with the command that
fetches it (``medimeta weights get NAME``) and the folder it would go to.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from medimeta.errors import FormatError, OptionError, WeightsNotFoundError
from medimeta.models.hf.table import NamedModel, find_named

POOL_SUFFIX = "@pool="
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class HFSpec:
    """An ``hf:`` backbone name split into its source and pooling (None: the default)."""

    source: str
    pool: str | None = None

    def name(self) -> str:
        return f"hf:{self.source}" + (f"{POOL_SUFFIX}{self.pool}" if self.pool else "")


def parse_spec(model: str) -> HFSpec:
    """``SOURCE[@pool=POOL]`` (the part after ``hf:``)."""
    source, sep, pool = model.rpartition(POOL_SUFFIX)
    if not sep:
        source, pool = model, ""
    if not source.strip():
        raise OptionError(f"hf: needs a model folder, a named model or a hub id; got {model!r}")
    return HFSpec(source.strip(), pool.strip() or None)


def with_pool(name: str, pool: str | None) -> str:
    """``name`` (an ``hf:`` backbone) with ``@pool=POOL`` set (``--pool``); a different
    pooling already there fails, and so does a backbone of another kind."""
    if not pool:
        return name
    if not name.startswith("hf:"):
        raise OptionError(
            f"--pool applies to hf: backbones (and the named hub models); {name!r} is not one"
        )
    base, sep, old = name.rpartition(POOL_SUFFIX)
    if sep and old != pool:
        raise OptionError(f"backbone {name!r} already names pooling {old!r}; --pool says {pool!r}")
    return f"{base if sep else name}{POOL_SUFFIX}{pool}"


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache, resolved from the environment now (not at import)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "huggingface" / "hub"


def repo_folder(hub_id: str, cache: Path | None = None) -> Path:
    """The cache folder of a model repository (``models--ORG--NAME``)."""
    return (cache or hub_cache_dir()) / ("models--" + hub_id.replace("/", "--"))


def cached_snapshot(hub_id: str, revision: str, cache: Path | None = None) -> Path | None:
    """The snapshot folder of ``hub_id`` at ``revision`` (a commit or a ref), if it is there."""
    repo = repo_folder(hub_id, cache)
    commit = revision
    if not _COMMIT.match(revision):
        ref = repo / "refs" / revision
        if not ref.is_file():
            return None
        commit = ref.read_text(encoding="utf-8").strip()
    folder = repo / "snapshots" / commit
    return folder if folder.is_dir() else None


def detect_format(folder: Path) -> str:
    """``transformers``, ``open_clip`` or ``timm`` from the files of a model folder."""
    if (folder / "open_clip_config.json").is_file():
        return "open_clip"
    config = folder / "config.json"
    if config.is_file():
        import json

        try:
            data = json.loads(config.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise FormatError(config, f"not JSON ({exc})") from exc
        return "timm" if "architecture" in data and "model_type" not in data else "transformers"
    raise FormatError(
        folder,
        "not a model folder",
        expected="config.json (transformers or timm) or open_clip_config.json",
        actual=sorted(p.name for p in folder.iterdir())[:10] if folder.is_dir() else "no folder",
        fix="pass a folder written by save_pretrained, or a named model (medimeta backbones list)",
    )


WEIGHT_NAMES = {
    "transformers": ("model.safetensors", "pytorch_model.bin"),
    "timm": ("model.safetensors", "pytorch_model.bin"),
    "open_clip": ("open_clip_model.safetensors", "open_clip_pytorch_model.bin"),
}


def weights_files(folder: Path, fmt: str) -> list[Path]:
    """The weights files of a folder: one file, or the shards its index names (safetensors
    first)."""
    import json

    for name in WEIGHT_NAMES[fmt]:
        if (folder / name).is_file():
            return [folder / name]
        index = folder / f"{name}.index.json"
        if index.is_file():
            shards = sorted(
                set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
            )
            return [folder / s for s in shards]
    return []


def file_sha256(path: Path) -> str:
    """sha256 of a file; a hub-cache file is a link to its blob, named by its sha256 (the
    hub's LFS etag), which is then taken as is."""
    target = path.resolve()
    if target.parent.name == "blobs" and _HEX64.match(target.name):
        return target.name
    digest = hashlib.sha256()
    with open(target, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class ModelSource:
    """A resolved model: its folder and format, and for hub models the id and revision."""

    folder: Path
    format: str
    hub_id: str | None = None
    revision: str | None = None
    named: NamedModel | None = None

    @property
    def commit(self) -> str | None:
        """The snapshot's commit (its folder name) for a hub-cache folder."""
        return self.folder.name if _COMMIT.match(self.folder.name) else None

    @property
    def label(self) -> str:
        return self.hub_id or str(self.folder)

    def weights_record(self) -> dict[str, str]:
        """Path and sha256 of the weights (several shards: sha256 over their digests)."""
        files = weights_files(self.folder, self.format)
        if not files:
            raise WeightsNotFoundError(
                f"{self.folder}: no weights file ({' or '.join(WEIGHT_NAMES[self.format])}); "
                f"fix: {fetch_hint(self)}"
            )
        digests = {f.name: file_sha256(f) for f in files}
        whole = (
            next(iter(digests.values()))
            if len(digests) == 1
            else hashlib.sha256(
                "".join(f"{k}={v}\n" for k, v in digests.items()).encode()
            ).hexdigest()
        )
        record = {"path": str(files[0] if len(files) == 1 else self.folder), "sha256": whole}
        if self.hub_id:
            record.update(hub_id=self.hub_id, revision=str(self.revision), commit=str(self.commit))
        return record


def fetch_hint(source: ModelSource | NamedModel | str) -> str:
    name = source if isinstance(source, str) else getattr(source, "name", None)
    if isinstance(source, ModelSource):
        name = source.named.name if source.named else f"hf:{source.hub_id or source.folder}"
    return f"medimeta weights get {name}"


def resolve(source: str) -> ModelSource:
    """The folder of ``source`` (see the module docstring); WeightsNotFoundError at once when a
    hub model is not in the cache."""
    path = Path(source).expanduser()
    if path.is_dir():
        return ModelSource(path.resolve(), detect_format(path))
    named = find_named(source)
    if named is None and not _HUB_ID.match(source):
        raise WeightsNotFoundError(
            f"hf:{source}: neither a model folder nor a named model nor a hub id (ORG/NAME); "
            "fix: pass an existing folder, or a name of: medimeta backbones list"
        )
    hub_id = named.hub_id if named else source
    revision = named.revision if named else "main"
    folder = cached_snapshot(hub_id, revision)
    if folder is None:
        where = repo_folder(hub_id)
        label = named.name if named else f"hf:{hub_id}"
        raise WeightsNotFoundError(
            f"{label} ({hub_id} at revision {revision}) is not in the Hugging Face cache "
            f"{hub_cache_dir()}; fix: medimeta weights get {label} (stores it in {where}; "
            "offline: fetch it there on a machine with network and copy the folder, or pass "
            "hf:FOLDER)"
        )
    return ModelSource(folder, detect_format(folder), hub_id, revision, named)
