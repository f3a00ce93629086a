"""Where the toolkit keeps files of its own: one resolution for every cache folder.

* :func:`cache_dir`: the per-data-root cache of derived data (embeddings, audit descriptors,
  image fingerprints): ``--cache DIR``, else ``$MEDIMETA_CACHE``, else ``<data root>/.cache``.
* :func:`user_cache_dir`: the per-user cache (``$XDG_CACHE_HOME/medimeta``, else
  ``~/.cache/medimeta``) where downloaded weights live unless ``$MEDIMETA_WEIGHTS`` says
  otherwise (:func:`weights_dir`).

Nothing here creates a folder.
"""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "MEDIMETA_CACHE"
WEIGHTS_ENV = "MEDIMETA_WEIGHTS"


def cache_dir(cache: str | os.PathLike[str] | None, root: str | os.PathLike[str]) -> Path:
    """``cache``, else ``$MEDIMETA_CACHE``, else ``<root>/.cache``."""
    if cache is not None:
        return Path(cache)
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path(root) / ".cache"


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/medimeta``, else ``~/.cache/medimeta``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "medimeta"


def weights_dir() -> Path:
    """``$MEDIMETA_WEIGHTS``, else ``<user cache>/weights`` (see :func:`user_cache_dir`)."""
    if os.environ.get(WEIGHTS_ENV):
        return Path(os.environ[WEIGHTS_ENV]).expanduser()
    return user_cache_dir() / "weights"


def torch_hub_checkpoints_dir() -> Path:
    """torch's cache of downloaded weights, ``<torch hub dir>/checkpoints``: what
    ``torch.hub.get_dir()`` says once torch is imported (it may have been changed with
    ``torch.hub.set_dir``), else the same rule without importing torch (``$TORCH_HOME/hub``,
    else ``$XDG_CACHE_HOME/torch/hub``, else ``~/.cache/torch/hub``)."""
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "hub"):
        return Path(torch.hub.get_dir()) / "checkpoints"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    home = os.environ.get("TORCH_HOME") or os.path.join(base, "torch")
    return Path(home).expanduser() / "hub" / "checkpoints"
