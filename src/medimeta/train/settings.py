"""How a run executes (not part of its protocol): its folder, resuming, device, progress."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from medimeta.errors import OptionError


@dataclass(frozen=True)
class RunSettings:
    """``out_dir`` the run folder; ``resume`` continue a run found there (finished episodes,
    the last checkpoint); ``device`` ``cpu``, ``cuda``, ``cuda:1`` (default: CUDA if there is
    one); ``progress`` show progress bars; ``backbone_checkpoint`` (few-shot) a trained
    backbone that replaces the method's training stage; ``batched`` (few-shot) lets the
    methods that read cached features score all episodes at once (False: one by one, the
    check path; the numbers agree within 1e-4)."""

    out_dir: Path = Path("runs")
    resume: bool = True
    device: str | None = None
    progress: bool = False
    backbone_checkpoint: Path | None = None
    batched: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "out_dir", Path(self.out_dir))
        if self.backbone_checkpoint is not None:
            object.__setattr__(self, "backbone_checkpoint", Path(self.backbone_checkpoint))


@dataclass(frozen=True)
class EpisodePlan:
    """The episodes a few-shot run evaluates: a saved ``file`` (the same episodes for every
    method), or ``episodes`` sampled from ``split`` with ``shots`` / ``queries`` per class and
    ``seed``; ``limit`` evaluates only the first episodes (recorded)."""

    file: str | Path | None = None
    shots: int = 5
    queries: int = 10
    episodes: int = 100
    seed: int = 0
    split: str | None = None
    limit: int | None = field(default=None)

    def __post_init__(self) -> None:
        if self.file is not None:
            object.__setattr__(self, "file", Path(self.file))
        if self.shots < 1 or self.queries < 1 or self.episodes < 1:
            raise OptionError(
                f"shots, queries and episodes must be >= 1; got {self.shots}, {self.queries}, "
                f"{self.episodes}"
            )
        if self.limit is not None and self.limit < 1:
            raise OptionError(f"limit must be >= 1; got {self.limit}")
