"""Zero-shot prompts: the built-in template sets (``catalog/prompts.yaml``) or a prompts file,
rendered for the classes of an episode's task.

A prompts file (``--prompts FILE``, YAML) may hold any of::

    templates: ["a breast ultrasound image of {class_name}", ...]   # replace the set
    classes:                     # prompts of some classes (by label name or key), verbatim
      malignant: ["a malignant breast tumour"]
    nothing: ["a normal breast ultrasound image"]   # multi-label's "nothing" prompts

Placeholders: ``{class_name}`` (underscores read as spaces), ``{dataset_name}``,
``{task_name}`` and ``{domain}``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from medimeta.errors import FormatError, OptionError, UnknownNameError

PLACEHOLDERS = ("class_name", "dataset_name", "task_name", "domain")
FILE_KEYS = ("templates", "classes", "nothing")


@dataclass(frozen=True)
class TaskText:
    """What a prompt may name of the task: dataset, task and domain."""

    dataset_name: str
    task_name: str
    domain: str


@dataclass(frozen=True)
class PromptSet:
    """Templates (and explicit prompts per class) for one run; ``source`` and ``sha256`` say
    where they came from."""

    templates: tuple[str, ...]
    domains: dict[str, tuple[str, ...]] = field(default_factory=dict)
    classes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    nothing: tuple[str, ...] | None = None
    nothing_name: str = "nothing"
    source: str = "built-in"
    sha256: str | None = None

    def templates_for(self, task: TaskText) -> tuple[str, ...]:
        return (*self.templates, *self.domains.get(task.domain, ()))

    def for_class(self, task: TaskText, key: int, name: str) -> list[str]:
        """The prompts of class ``key`` (``name``) of ``task``."""
        explicit = self.classes.get(name) or self.classes.get(str(key))
        if explicit:
            return list(explicit)
        return [render(t, task, name, self.source) for t in self.templates_for(task)]

    def for_nothing(self, task: TaskText) -> list[str]:
        """The prompts a multi-label task scores each label against."""
        if self.nothing:
            return list(self.nothing)
        return [render(t, task, self.nothing_name, self.source) for t in self.templates_for(task)]

    def describe(self) -> dict[str, Any]:
        return {"source": self.source, "sha256": self.sha256, "templates": list(self.templates)}


def render(template: str, task: TaskText, class_name: str, where: str) -> str:
    """``template`` with the placeholders filled in."""
    values = {
        "class_name": class_name.replace("_", " "),
        "dataset_name": task.dataset_name,
        "task_name": task.task_name,
        "domain": task.domain,
    }
    try:
        return template.format(**values)
    except (KeyError, IndexError, ValueError) as exc:
        raise FormatError(
            where,
            "a prompt template that cannot be filled in",
            key=template,
            expected="placeholders " + ", ".join("{" + p + "}" for p in PLACEHOLDERS),
            actual=str(exc),
            fix="use only those placeholders; write {{ and }} for literal braces",
        ) from None


@lru_cache(maxsize=1)
def _builtin() -> dict[str, Any]:
    text = resources.files("medimeta.catalog").joinpath("prompts.yaml").read_text("utf-8")
    return dict(yaml.safe_load(text))


def builtin_sets() -> tuple[str, ...]:
    return tuple(_builtin()["sets"])


def prompt_set(name: str = "ensemble", file: str | Path | None = None) -> PromptSet:
    """The built-in set ``name``, or the prompts of ``file`` (see the module docstring)."""
    data = _builtin()
    if name not in data["sets"]:
        raise UnknownNameError("zero-shot template set", name, tuple(data["sets"]))
    domains = {k: tuple(v) for k, v in data["domains"].items()} if name == "ensemble" else {}
    builtin = PromptSet(
        tuple(data["sets"][name]), domains, nothing_name=str(data["nothing"]), source=name
    )
    return builtin if file is None else _from_file(Path(file), builtin)


def _strings(value: Any, path: Path, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise FormatError(
            path,
            "a list of prompts expected",
            key=key,
            expected="non-empty list of strings",
            actual=repr(value)[:80],
        )
    return tuple(value)


def _from_file(path: Path, builtin: PromptSet) -> PromptSet:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise OptionError(f"cannot read the prompts file {path}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(raw.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise FormatError(path, "not valid UTF-8 YAML", actual=" ".join(str(exc).split())) from None
    if not isinstance(data, dict) or not data or set(data) - set(FILE_KEYS):
        raise FormatError(
            path,
            "a prompts file is a mapping",
            expected="keys among " + ", ".join(FILE_KEYS),
            actual=repr(sorted(data))[:80] if isinstance(data, dict) else type(data).__name__,
            fix="see docs/methods.md, zero-shot",
        )
    templates = builtin.templates
    domains = builtin.domains
    if "templates" in data:
        templates, domains = _strings(data["templates"], path, "templates"), {}
        for t in templates:
            if "{class_name}" not in t:
                raise FormatError(
                    path,
                    "a template without {class_name}",
                    key="templates",
                    actual=t,
                    fix="every template names the class with {class_name}",
                )
    classes = {}
    raw_classes = data.get("classes") or {}
    if not isinstance(raw_classes, dict):
        raise FormatError(path, "classes maps a class name or key to prompts", key="classes")
    for name, prompts in raw_classes.items():
        classes[str(name)] = _strings(prompts, path, f"classes.{name}")
    nothing = _strings(data["nothing"], path, "nothing") if "nothing" in data else None
    return PromptSet(
        templates,
        domains,
        classes,
        nothing,
        builtin.nothing_name,
        str(path),
        hashlib.sha256(raw).hexdigest(),
    )


def check_classes(pset: PromptSet, names: dict[int, str]) -> None:
    """The prompts file's ``classes`` name only classes of the task."""
    known = {*names.values(), *map(str, names)}
    unknown = sorted(set(pset.classes) - known)
    if unknown:
        raise FormatError(
            pset.source,
            "prompts for classes the task does not have",
            key="classes",
            expected=", ".join(sorted(names.values())),
            actual=", ".join(unknown),
            fix="name classes as the task's labels (or their keys)",
        )
