"""``medimeta weights get`` for hub models: the files a model needs, at its pinned revision, into
the Hugging Face cache (``$HF_HUB_CACHE`` / ``$HF_HOME/hub``), through huggingface_hub.

What is fetched: ``config.json`` and ``preprocessor_config.json`` (open_clip:
``open_clip_config.json``), the weights (``model.safetensors`` or its shards; a
``pytorch_model.bin`` only where the repository has no safetensors) and, with ``text=True``, the
tokenizer files. ``$HF_ENDPOINT`` (a mirror) is honoured. Offline (``--offline``,
``HF_HUB_OFFLINE=1`` or ``MEDIMETA_OFFLINE=1``), or when the endpoint cannot be reached within a
two-second connect, ``get`` fails at once, naming the folder the files would go to; it never
waits on huggingface_hub's retries.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from pathlib import Path

from medimeta.errors import DownloadError, FormatError, WeightsNotFoundError
from medimeta.fetch.network import offline_reason, probe
from medimeta.logs import plural
from medimeta.models.hf.source import (
    WEIGHT_NAMES,
    cached_snapshot,
    hub_cache_dir,
    parse_spec,
    repo_folder,
    weights_files,
)
from medimeta.models.hf.table import NamedModel, find_named

DEFAULT_ENDPOINT = "https://huggingface.co"
TEXT_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.json",
    "vocab.txt",
    "merges.txt",
    "spiece.model",
)
_CONFIG = {
    "transformers": ("config.json", "preprocessor_config.json"),
    "open_clip": ("open_clip_config.json",),
}


@dataclass(frozen=True)
class HubModel:
    """A model to fetch: label (what the user typed, as the fix names it), hub id, revision."""

    label: str
    hub_id: str
    revision: str
    format: str = "transformers"
    named: NamedModel | None = None


@dataclass(frozen=True)
class Fetched:
    name: str
    path: Path
    how: str


def is_hub_name(name: str) -> bool:
    """Whether ``medimeta weights get NAME`` means a hub model."""
    source = parse_spec(name.removeprefix("hf:")).source
    return name.startswith("hf:") or find_named(source) is not None


def hub_model(name: str) -> HubModel:
    """The hub model of a named model, ``hf:NAME`` or ``hf:ORG/NAME`` (revision main)."""
    source = parse_spec(name.removeprefix("hf:")).source
    named = find_named(source)
    if named is not None:
        return HubModel(named.name, named.hub_id, named.revision, named.format, named)
    if "/" not in source or Path(source).expanduser().is_dir():
        raise WeightsNotFoundError(
            f"{name}: not a named hub model nor a hub id ORG/NAME; fix: a name of "
            "medimeta backbones list, or hf:ORG/NAME"
        )
    return HubModel(f"hf:{source}", source, "main")


def endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def needed_files(files: list[str], fmt: str, text: bool = False) -> list[str]:
    """The files of a repository listing a model needs (see the module docstring)."""
    have = set(files)
    wanted = [f for f in _CONFIG[fmt] if f in have]
    weights: list[str] = []
    for name in WEIGHT_NAMES[fmt]:
        stem = name.rsplit(".", 1)[0]
        if name in have:
            weights = [name]
        elif f"{name}.index.json" in have:
            shards = fnmatch.filter(files, f"{stem}-*-of-*.{name.rsplit('.', 1)[1]}")
            weights = [f"{name}.index.json", *sorted(shards)]
        if weights:
            break
    missing = [f for f in _CONFIG[fmt] if f not in have] + ([] if weights else ["weights"])
    if missing:
        raise FormatError(
            "hub repository",
            "lacks files a model needs",
            expected=[*_CONFIG[fmt], " or ".join(WEIGHT_NAMES[fmt])],
            actual=sorted(files)[:20],
            key=", ".join(missing),
        )
    extra = [f for f in TEXT_FILES if f in have] if text else []
    return [*wanted, *weights, *extra]


def installed(model: HubModel) -> Path | None:
    """The cached snapshot of ``model`` when it holds its config and weights."""
    folder = cached_snapshot(model.hub_id, model.revision)
    if folder is None or not weights_files(folder, model.format):
        return None
    return folder if all((folder / f).is_file() for f in _CONFIG[model.format]) else None


def _unreachable(model: HubModel, why: str) -> str:
    where = repo_folder(model.hub_id)
    return (
        f"{model.label} ({model.hub_id} at revision {model.revision}): {why}; it would be "
        f"stored in {where}; fix: run medimeta weights get {model.label} where {endpoint()} "
        "can be reached (or set HF_ENDPOINT to a mirror) and copy that folder here"
    )


def fetch_hub_model(
    name: str,
    *,
    offline: bool = False,
    force: bool = False,
    text: bool = False,
    timeout: float = 10.0,
    quiet: bool = False,
) -> Fetched:
    """Fetch ``name``'s files into the hub cache (kept when there unless ``force``)."""
    model = hub_model(name)
    folder = installed(model)
    if folder is not None and not force:
        return Fetched(model.label, folder, "already in the Hugging Face cache")
    why = offline_reason(offline)
    if why is not None:
        raise WeightsNotFoundError(_unreachable(model, f"offline ({why}) and not in the cache"))
    url = endpoint()
    problem = probe(url)
    if problem is not None:
        raise DownloadError(_unreachable(model, f"cannot reach {url} ({problem})"))
    return _download(model, url, force=force, text=text, timeout=timeout, quiet=quiet)


def _download(
    model: HubModel, url: str, *, force: bool, text: bool, timeout: float, quiet: bool
) -> Fetched:
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.utils import (
        are_progress_bars_disabled,
        disable_progress_bars,
        enable_progress_bars,
    )

    cache = hub_cache_dir()
    bars_were_off = are_progress_bars_disabled()
    if quiet:
        disable_progress_bars()
    try:
        files = HfApi(endpoint=url).list_repo_files(model.hub_id, revision=model.revision)
        patterns = needed_files(list(files), model.format, text)
        path = snapshot_download(
            model.hub_id,
            revision=model.revision,
            cache_dir=cache,
            endpoint=url,
            allow_patterns=patterns,
            etag_timeout=timeout,
            force_download=force,
            max_workers=4,
        )
    except FormatError:
        raise
    except Exception as exc:  # huggingface_hub / httpx errors: one line, no traceback
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise DownloadError(_unreachable(model, f"{type(exc).__name__}: {first[:300]}")) from exc
    finally:
        if quiet and not bars_were_off:
            enable_progress_bars()
    return Fetched(
        model.label,
        Path(path),
        f"{plural(len(patterns), 'file')} of {model.hub_id} at {Path(path).name} from {url}",
    )
