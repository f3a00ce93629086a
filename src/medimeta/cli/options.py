"""Options shared by the commands."""

from __future__ import annotations

from pathlib import Path

import typer

from medimeta.format.layout import default_root

ROOT_HELP = (
    "Data root holding one folder per dataset [default: $MEDIMETA_ROOT, else ./data/MedIMeta]"
)


def root_option() -> Path | None:
    return typer.Option(None, "--root", help=ROOT_HELP, show_default=False)  # type: ignore[no-any-return]


def resolve(root: Path | None) -> Path:
    """The --root value, else $MEDIMETA_ROOT, else ./data/MedIMeta."""
    return root if root is not None else default_root()
