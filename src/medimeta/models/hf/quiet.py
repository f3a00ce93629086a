"""transformers without its loading reports and progress bars, for one block."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any

from medimeta.errors import MissingDependencyError


def require_transformers() -> Any:
    """The transformers module; MissingDependencyError naming the extra when it is absent."""
    try:
        import transformers
    except ImportError as exc:
        raise MissingDependencyError.for_extra(
            "models", f"hf: backbones need the package 'transformers' ({exc})"
        ) from exc
    return transformers


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Errors only from transformers' logger, no progress bars; both restored afterwards."""
    require_transformers()
    from transformers.utils import logging as tlog

    level = tlog.get_verbosity()
    bars = tlog.is_progress_bar_enabled()
    tlog.set_verbosity_error()
    tlog.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module="transformers")
            yield
    finally:
        tlog.set_verbosity(level)
        if bars:
            tlog.enable_progress_bar()
