"""The settings of a few-shot evaluation: what every method shares, plus the method's options.

:class:`FewShotConfig` is frozen and validated once, when it is made. The settings every
method shares are fields of their own; the method's settings are its options dataclass
(declared by the method's module, see :mod:`medimeta.train.fewshot.registry`), given either
as ``options=`` or as keyword arguments::

    FewShotConfig(method="knn", backbone="efficientnet_lite0", knn_k=5)

Defaults are those of the MedIMeta paper's code; docs/methods.md lists each method's.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from medimeta.errors import OptionError, UnknownNameError, check_choice
from medimeta.train.fewshot.options import MethodOptions, OptionsT
from medimeta.train.fewshot.registry import FewShotMethod, all_methods, get_method, option_fields

NORMALIZATIONS = ("auto", "half", "imagenet")
#: The shared settings every result records (besides the method's options).
COMMON_FIELDS = (
    "method",
    "backbone",
    "pretrained",
    "image_size",
    "normalize",
    "ordinal",
    "head_init",
    "seed",
    "channels_last",
)


@dataclass(frozen=True, init=False)
class FewShotConfig:
    """Everything that determines a few-shot evaluation besides the episodes and the data."""

    method: str
    backbone: str
    pretrained: bool | str
    image_size: int | None
    normalize: str
    channels_last: bool | None
    ordinal: str
    head_init: str
    seed: int
    options: MethodOptions

    def __init__(
        self,
        method: str = "im-pt",
        backbone: str = "resnet18",
        pretrained: bool | str = True,
        image_size: int | None = None,
        normalize: str = "auto",
        channels_last: bool | None = None,
        ordinal: str = "nominal",
        head_init: str = "zero",
        seed: int = 0,
        options: MethodOptions | None = None,
        **option_values: Any,
    ) -> None:
        spec = get_method(method)
        if options is None:
            unknown = sorted(set(option_values) - set(spec.options.field_names()))
            if unknown:
                raise OptionError(
                    f"few-shot method {method!r} has no option(s) {', '.join(unknown)}; its "
                    f"options are {', '.join(spec.options.field_names()) or 'none'}"
                )
            options = spec.options(**option_values)
        elif option_values or not isinstance(options, spec.options):
            raise OptionError(
                f"few-shot method {method!r} takes options of type {spec.options.__name__}, "
                "given either as options= or as keywords"
            )
        values = dict(
            method=method,
            backbone=backbone,
            pretrained=pretrained,
            image_size=image_size,
            normalize=normalize,
            channels_last=channels_last,
            ordinal=ordinal,
            head_init=head_init,
            seed=seed,
            options=options,
        )
        for key, value in values.items():
            object.__setattr__(self, key, value)
        check_choice("normalisation", normalize, NORMALIZATIONS)
        if image_size is not None and image_size < 8:
            raise OptionError(f"image_size must be at least 8 pixels; got {image_size}")

    @property
    def spec(self) -> FewShotMethod:
        """The registered method these settings are for."""
        return get_method(self.method)

    def options_as(self, kind: type[OptionsT]) -> OptionsT:
        """The method's options, checked to be (a subclass of) ``kind``."""
        if not isinstance(self.options, kind):
            raise OptionError(
                f"few-shot method {self.method!r} has options {type(self.options).__name__}, "
                f"not the {kind.__name__} this step needs"
            )
        return self.options

    def with_overrides(self, **changes: Any) -> FewShotConfig:
        """A copy with the given settings changed (``None`` values are ignored).

        A change may name a shared setting or an option of any registered method; options
        of other methods are ignored (so one set of command-line options serves every
        method), unknown names are an error."""
        changes = {k: v for k, v in changes.items() if v is not None}
        method = changes.pop("method", self.method)
        common = {k: changes.pop(k) for k in list(changes) if k in COMMON_FIELDS}
        unknown = sorted(set(changes) - option_fields())
        if unknown:
            raise OptionError(f"unknown few-shot setting(s): {', '.join(unknown)}")
        spec = get_method(method)
        options = self.options if method == self.method else spec.options()
        mine = {k: v for k, v in changes.items() if k in spec.options.field_names()}
        if mine:
            options = replace(options, **mine)
        shared = {k: getattr(self, k) for k in COMMON_FIELDS if k != "method"}
        return FewShotConfig(method, options=options, **{**shared, **common})

    def relevant(self) -> dict[str, Any]:
        """The settings that matter for this method (what result files record and run hashes
        are made of)."""
        out = {k: getattr(self, k) for k in COMMON_FIELDS}
        out.update(self.options.recorded())
        return out


def parse_options(values: list[str]) -> dict[str, Any]:
    """``["KEY=VALUE", ...]`` (``--option``) as typed option values of the registered methods'
    options (int, float, bool, text, comma-separated lists); OptionError naming the key."""
    fields_by_name = {f.name: f for m in all_methods() for f in fields(m.options)}
    out: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in fields_by_name:
            raise UnknownNameError(
                "method option (--option KEY=VALUE)", key or item, sorted(fields_by_name)
            )
        out[key] = _typed(key, str(fields_by_name[key].type), raw.strip())
    return out


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _typed(key: str, kind: str, raw: str) -> Any:
    try:
        if "None" in kind and raw.lower() in ("", "none"):
            return None
        if kind.startswith("bool"):
            if raw.lower() not in (*_TRUE, *_FALSE):
                raise ValueError
            return raw.lower() in _TRUE
        if kind.startswith("int"):
            return int(raw)
        if kind.startswith("float"):
            return float(raw)
        if kind.startswith("tuple"):
            return tuple(p.strip() for p in raw.split(",") if p.strip())
    except ValueError:
        raise OptionError(
            f"--option {key}={raw}: expected {kind.split(' ')[0].split('[')[0]}; got {raw!r}"
        ) from None
    return raw
