"""Options shared by the commands."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import typer
from typer.core import TyperCommand, TyperGroup

from medimeta.format.layout import default_root

ROOT_HELP = (
    "Data root holding one folder per dataset [default: $MEDIMETA_ROOT, else ./data/MedIMeta]"
)


def _wrap_at_spaces_only() -> None:
    """Help text wraps at spaces only: a name such as "linear-probe" or "--no-cache" is never
    cut at its hyphen (click's default), so every name in the help can be copied as shown."""
    try:
        from typer._click import _textwrap
    except ImportError:  # another typer layout: keep its wrapping
        return
    init = _textwrap.TextWrapper.__init__
    if getattr(init, "_medimeta", False):
        return

    def no_hyphen_breaks(self: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("break_on_hyphens", False)
        init(self, *args, **kwargs)

    no_hyphen_breaks._medimeta = True  # type: ignore[attr-defined]
    _textwrap.TextWrapper.__init__ = no_hyphen_breaks  # type: ignore[method-assign]


_wrap_at_spaces_only()


def make_app(name: str, help: str) -> typer.Typer:
    """A command group with the toolkit's conventions: plain help text (square brackets such
    as ``[default: ...]`` are shown as written, not read as markup), no pretty tracebacks (the
    entry point turns errors into one line), help when called without a command."""
    return typer.Typer(
        name=name,
        help=help,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
        rich_markup_mode=None,
    )


def help_from(**helps: Callable[[], str]) -> type[TyperCommand]:
    """A command class whose options named in ``helps`` take their help text from those
    functions when the help is shown: the few-shot method registry lists the methods there,
    including those added by plugins, without being imported when the command starts."""

    class Command(TyperCommand):
        def format_help(self, ctx: Any, formatter: Any) -> None:
            for param in self.params:
                if param.name in helps:
                    param.help = helps[param.name]()  # type: ignore[attr-defined]
            super().format_help(ctx, formatter)

    return Command


def group_help_from(**helps: Callable[[], str]) -> type[TyperGroup]:
    """:func:`help_from` for a command group that also runs itself (``benchmark``)."""

    class Group(TyperGroup):
        def format_help(self, ctx: Any, formatter: Any) -> None:
            for param in self.params:
                if param.name in helps:
                    param.help = helps[param.name]()  # type: ignore[attr-defined]
            super().format_help(ctx, formatter)

    return Group


def methods_help() -> str:
    """The few-shot methods of the registry, for ``--method`` (imports the registry)."""
    from medimeta.train.fewshot.registry import methods_help as listing

    return "One of: " + listing() + "."


def root_option() -> Path | None:
    return typer.Option(None, "--root", help=ROOT_HELP, show_default=False)  # type: ignore[no-any-return]


def resolve(root: Path | None) -> Path:
    """The --root value, else $MEDIMETA_ROOT, else ./data/MedIMeta."""
    return root if root is not None else default_root()


QUIET_HELP = "Print only warnings, errors and where the results went."
VERBOSE_HELP = "Also print the library's debug messages."


def quiet_option(help: str = QUIET_HELP) -> bool:
    """``-q/--quiet``, the same on every command."""
    return typer.Option(False, "--quiet", "-q", help=help)  # type: ignore[no-any-return]


def verbose_option() -> bool:
    """``-v/--verbose``, the same on every command."""
    return typer.Option(False, "--verbose", "-v", help=VERBOSE_HELP)  # type: ignore[no-any-return]


@contextmanager
def log_to_stderr(
    logger_name: str, *, quiet: bool, verbose: bool = False, fmt: str = "%(message)s"
) -> Iterator[None]:
    """Show a library logger's messages on stderr for one command: warnings only when quiet,
    debug messages too when verbose."""
    logger = logging.getLogger(logger_name)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(fmt))
    old_level = logger.level
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logger.setLevel(level)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def one_line_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """``warnings.showwarning`` for the CLI: ``warning (Category): message`` on one line,
    without the source file and line that Python prints by default; a
    :class:`~medimeta.errors.Note` (what the toolkit chose for the user) as ``note: message``."""
    from medimeta.errors import Note

    text = " ".join(str(message).split())
    head = "note" if issubclass(category, Note) else f"warning ({category.__name__})"
    print(f"{head}: {text}", file=file or sys.stderr)


POOL_HELP = (
    "Pooling of hf: backbones: cls, mean, cls+mean or projected [default: the model's own, "
    "see docs/backbones.md]; same as hf:MODEL@pool=POOL."
)
BACKBONE_HELP = "Backbone: registered, hf:FOLDER|HUB_ID|NAME, or a named hub model."


def pool_option() -> Any:
    return typer.Option(None, "--pool", help=POOL_HELP, show_default=False)


def _hub_name(name: str) -> str | None:
    """``hf:...`` for an hf: backbone or a named hub model (which no registered backbone
    shadows), else None; torch-free."""
    from medimeta.models.hf.source import parse_spec
    from medimeta.models.hf.table import find_named

    if name.startswith("hf:"):
        return name
    return f"hf:{name}" if find_named(parse_spec(name).source) is not None else None


def pooled(backbone: str, pool: str | None) -> str:
    """``backbone`` with ``--pool`` applied (an ``hf:`` backbone or a named hub model)."""
    if not pool:
        return backbone
    from medimeta.models.hf.source import with_pool

    return with_pool(_hub_name(backbone) or backbone, pool)


def pooled_list(backbones: str, pool: str | None) -> str:
    """Comma-separated backbones with ``--pool`` applied to the ``hf:`` ones (one at least)."""
    if not pool:
        return backbones
    from medimeta.errors import OptionError

    names = [b.strip() for b in backbones.split(",") if b.strip()]
    if not any(_hub_name(n) for n in names):
        raise OptionError(f"--pool applies to hf: backbones; none in {backbones!r}")
    return ",".join(pooled(n, pool) if _hub_name(n) else n for n in names)


def check_hub_backbones(*names: str) -> None:
    """Fail at once (before torch is imported) when an hf: backbone or named hub model is not
    on this machine: WeightsNotFoundError naming ``medimeta weights get NAME``."""
    from medimeta.models.hf.source import parse_spec, resolve

    for name in names:
        for part in (p.strip() for p in name.split(",")):
            hub = _hub_name(part) if part else None
            if hub is not None:
                resolve(parse_spec(hub.removeprefix("hf:")).source)
