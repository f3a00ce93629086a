"""Settings of the few-shot methods: each method's options are a frozen dataclass of
:class:`MethodOptions`, built from the groups below that several methods share.

A field with ``metadata={"omit_default": True}`` is left out of the recorded settings while it
has its default value, so that adding such an option keeps the run hashes of earlier results.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Protocol, TypeVar

from medimeta.errors import OptionError, check_choice

BN_POLICIES = ("train", "frozen")
SOURCE_SELECTIONS = ("first", "all")


def _omit() -> dict[str, bool]:
    return {"omit_default": True}


@dataclass(frozen=True)
class MethodOptions:
    """Base of a method's options; ``validate`` runs once, when the options are made."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise OptionError (naming the option, expected and actual value) if a value is off."""

    def recorded(self) -> dict[str, Any]:
        """The settings a result records (tuples as lists; see the module docstring)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.metadata.get("omit_default") and value == _default(f):
                continue
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


def _default(f: Any) -> Any:
    if f.default is not MISSING:
        return f.default
    return f.default_factory() if f.default_factory is not MISSING else MISSING


def _at_least(options: MethodOptions, minimum: float, *names: str) -> None:
    for name in names:
        value = getattr(options, name)
        if value < minimum:
            raise OptionError(f"{name} must be >= {minimum:g}; got {value}")


@dataclass(frozen=True)
class FinetuneOptions(MethodOptions):
    """Fine-tuning the whole network on the support set (im-pt, mm-pt): full-batch Adam.

    ``finetune_bn``: BatchNorm while fine-tuning, ``train`` (support statistics, the paper's)
    or ``frozen`` (the running statistics of the pre-trained weights)."""

    finetune_steps: int = 100
    finetune_lr: float = 1e-2
    finetune_bn: str = field(default="train", metadata=_omit())

    def validate(self) -> None:
        super().validate()
        _at_least(self, 0, "finetune_steps", "finetune_lr")
        check_choice("fine-tuning BatchNorm policy", self.finetune_bn, BN_POLICIES)


@dataclass(frozen=True)
class PretrainOptions(MethodOptions):
    """Multi-task pre-training on the source tasks (mm-pt, the classifier stage of
    meta-baseline): a random source task per step, Adam."""

    pretrain_steps: int = 1000
    pretrain_batch_size: int = 64
    pretrain_lr: float = 1e-3

    def validate(self) -> None:
        super().validate()
        _at_least(self, 0, "pretrain_steps", "pretrain_lr")
        _at_least(self, 1, "pretrain_batch_size")


@dataclass(frozen=True)
class SourceOptions(MethodOptions):
    """Which source tasks a method trains on: leave-one-out datasets present under the root,
    their first task (``first``, the paper) or ``all``; ``sources`` / ``exclude_sources``
    narrow that (``ID`` or ``ID:TASK``); ``allow_shared`` keeps sources that the audit finds
    sharing images with the target (recorded)."""

    source_tasks: str = "first"
    sources: tuple[str, ...] = field(default=(), metadata=_omit())
    exclude_sources: tuple[str, ...] = field(default=(), metadata=_omit())
    allow_shared: bool = field(default=False, metadata=_omit())

    def validate(self) -> None:
        super().validate()
        object.__setattr__(self, "sources", tuple(self.sources))
        object.__setattr__(self, "exclude_sources", tuple(self.exclude_sources))
        check_choice("source task selection", self.source_tasks, SOURCE_SELECTIONS)


@dataclass(frozen=True)
class MetaEpisodeOptions(MethodOptions):
    """Meta-training on source episodes (mm-maml, the meta stage of meta-baseline):
    ``meta_steps`` x ``meta_batch_size`` episodes of ``meta_shots`` / ``meta_queries``."""

    meta_steps: int = 1000
    meta_batch_size: int = 1
    meta_shots: int = 5
    meta_queries: int = 10

    def validate(self) -> None:
        super().validate()
        _at_least(self, 0, "meta_steps")
        _at_least(self, 1, "meta_batch_size", "meta_shots", "meta_queries")


OptionsT = TypeVar("OptionsT", bound=MethodOptions)


class MethodSettings(Protocol):
    """What a method reads of its settings (:class:`~medimeta.train.fewshot.config.FewShotConfig`
    is the one implementation; methods are typed against this so that the registry does not
    depend on the settings module)."""

    @property
    def method(self) -> str: ...

    @property
    def backbone(self) -> str: ...

    @property
    def ordinal(self) -> str: ...

    @property
    def head_init(self) -> str: ...

    @property
    def seed(self) -> int: ...

    @property
    def options(self) -> MethodOptions: ...

    def options_as(self, kind: type[OptionsT]) -> OptionsT: ...

    def relevant(self) -> dict[str, Any]: ...
