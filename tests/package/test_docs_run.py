"""The documentation runs as written.

Every ```python block of README.md and docs/**/*.md runs: the blocks of one file, in order, as
one script (later blocks see the earlier blocks' names, as when pasted into one file), in a
fresh process whose working folder holds the data the docs use under ``data/MedIMeta`` (``bus``
built from the real BUSI images, BreastMNIST converted from its official ``.npz``, and the
other folders a block declares). A ``>>>`` block runs as a doctest in the same namespace.

The README's ```bash blocks run too, command by command, in a fresh folder: the five-minute
walk-through builds ``bus`` from a ``Dataset_BUSI.zip`` in ``~/Downloads`` and goes on from
there. Commands that need the network or set up environments are left out (see
:func:`_shell_skip`, which names each reason).

A block declares what it needs in an HTML comment right before its fence, which Markdown does
not show: ``<!-- doc-test: needs busi_folder, pbc -->`` (folders prepared on demand, see
:data:`PREPARE`) or ``<!-- doc-test: skip (reason) -->``. Every skipped block is listed in
:data:`EXPECTED_SKIPS`, so a new skip is a decision, not an accident.
"""

from __future__ import annotations

import doctest
import os
import re
import shlex
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
FENCE = re.compile(r"^```(\w*)\s*$")
MARK = re.compile(r"^<!--\s*doc-test:\s*(needs|skip)\s*(.*?)\s*-->\s*$")
#: Every block marked ``skip`` (file, reason), kept in step with the docs.
EXPECTED_SKIPS = {
    ("docs/download.md", "downloads from Zenodo and MedMNIST: needs the network"),
    ("docs/weights.md", "downloads ImageNet weights: needs the network"),
    ("README.md", "make demo and make test build a venv and run the whole suite"),
}
NEEDS_DEFAULT = ("busi", "breastmnist")
TIMEOUT_S = 600


@dataclass
class Block:
    file: Path
    line: int
    lang: str
    code: str
    needs: set[str] = field(default_factory=set)
    skip: str | None = None

    @property
    def where(self) -> str:
        name = self.file.relative_to(REPO) if self.file.is_relative_to(REPO) else self.file
        return f"{name}:{self.line}"


def blocks(path: Path) -> list[Block]:
    """The fenced blocks of a Markdown file with the marks before them."""
    out: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        start, lang = i, m.group(1)
        j = i + 1
        while j < len(lines) and not lines[j].startswith("```"):
            j += 1
        block = Block(path, start + 1, lang, "\n".join(lines[start + 1 : j]) + "\n")
        k = start - 1
        while k >= 0 and (mark := MARK.match(lines[k])):
            if mark.group(1) == "skip":
                block.skip = mark.group(2).strip("() ") or "skipped"
            else:
                block.needs |= {n.strip() for n in mark.group(2).split(",") if n.strip()}
            k -= 1
        out.append(block)
        i = j + 1
    return out


# -- the data the docs use ------------------------------------------------------------------------
def _busi(realdata: Path, root: Path, _: Path) -> None:
    from medimeta.builders import build_dataset

    build_dataset("bus", realdata / "busi-256", root=root, workers=1)


def _breastmnist(realdata: Path, root: Path, _: Path) -> None:
    from medimeta.convert import convert_medmnist

    convert_medmnist(realdata / "medmnist-v2-28" / "breastmnist.npz", root)


def _busi_folder(realdata: Path, root: Path, base: Path) -> None:
    """busi-256 as a plain image-folder conversion (no word of BUSI in it)."""
    _cli(["convert", "folder", str(realdata / "busi-256"), "--root", str(root),
          "--id", "busi_folder", "--task", "diagnosis"], base)  # fmt: skip


def _pbc(realdata: Path, root: Path, base: Path) -> None:
    _cli(["build", "pbc", "--source", str(realdata / "pbc-subset"), "--root", str(root),
          "--partial", "-q"], base)  # fmt: skip


PREPARE: dict[str, Callable[[Path, Path, Path], None]] = {
    "busi": _busi,
    "breastmnist": _breastmnist,
    "busi_folder": _busi_folder,
    "pbc": _pbc,
}
FOLDER = {"busi": "bus"}


def _env(base: Path) -> dict[str, str]:
    """A clean environment: this checkout's code, offline, caches of this session only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEDIMETA_", "HF_"))}
    home = base / "home"
    env.update(
        PYTHONPATH=str(REPO / "src"),
        HOME=str(home),
        XDG_CACHE_HOME=str(home / ".cache"),
        HF_HOME=str(base / "hf"),
        MEDIMETA_CACHE=str(base / "cache"),  # features computed once for every doc
        MEDIMETA_WEIGHTS=str(base / "weights"),
        MEDIMETA_OFFLINE="1",
        MPLBACKEND="Agg",
        COLUMNS="120",
        PYTHONWARNINGS="ignore::DeprecationWarning",
    )
    return env


def _cli(args: list[str], base: Path, cwd: Path | None = None) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "medimeta", *args],
        env=_env(base), cwd=cwd or base, capture_output=True, text=True, timeout=TIMEOUT_S,
    )  # fmt: skip
    assert done.returncode == 0, f"medimeta {shlex.join(args)}:\n{done.stdout}\n{done.stderr}"


class DocData:
    """Dataset folders prepared once per session, on demand, linked into each work folder."""

    def __init__(self, realdata: Path, base: Path) -> None:
        self.realdata, self.base, self.root = realdata, base, base / "datasets"
        self.root.mkdir(parents=True, exist_ok=True)
        (base / "home").mkdir(exist_ok=True)

    def folder(self, need: str) -> Path:
        if need not in PREPARE:
            raise AssertionError(f"unknown doc-test need {need!r}; known: {sorted(PREPARE)}")
        path = self.root / FOLDER.get(need, need)
        if not path.is_dir():
            PREPARE[need](self.realdata, self.root, self.base)
        return path

    def workdir(self, name: str, needs: set[str]) -> Path:
        work = self.base / "work" / name
        data = work / "data" / "MedIMeta"
        data.mkdir(parents=True)
        for need in sorted(needs):
            folder = self.folder(need)
            (data / folder.name).symlink_to(folder, target_is_directory=True)
        return work


@pytest.fixture(scope="session")
def doc_data(realdata: Path, tmp_path_factory: pytest.TempPathFactory) -> DocData:
    for sub in ("busi-256", "medmnist-v2-28/breastmnist.npz"):
        if not (realdata / sub).exists():
            pytest.skip(f"{realdata / sub} is absent")
    return DocData(realdata, tmp_path_factory.mktemp("docs"))


# -- Python blocks ---------------------------------------------------------------------------------
HEADER = "import sys as _doc_sys\n"
DOCTEST = """
import doctest as _doctest
_doc_test = _doctest.DocTestParser().get_doctest({text!r}, globals(), {where!r}, {where!r}, 0)
_doc_runner = _doctest.DocTestRunner(optionflags=_doctest.ELLIPSIS | _doctest.NORMALIZE_WHITESPACE)
_doc_runner.run(_doc_test)
assert not _doc_runner.failures, {where!r} + ": the doctest above failed"
"""


def script(parts: list[Block]) -> str:
    """The blocks as one script; a line on stderr says which block starts."""
    text = HEADER
    for b in parts:
        text += f'\nprint("doc block {b.where}", file=_doc_sys.stderr, flush=True)\n'
        if b.code.lstrip().startswith(">>>"):
            text += DOCTEST.format(text=b.code, where=b.where)
        else:
            text += b.code
    return text


PY_FILES = [p for p in DOCS if any(b.lang == "python" for b in blocks(p))]


@pytest.mark.realdata
@pytest.mark.timeout(TIMEOUT_S)
@pytest.mark.parametrize("doc", PY_FILES, ids=[str(p.relative_to(REPO)) for p in PY_FILES])
def test_python_blocks_run(doc: Path, doc_data: DocData) -> None:
    found = [b for b in blocks(doc) if b.lang == "python"]
    rel = str(doc.relative_to(REPO))
    parts = [b for b in found if not b.skip]
    needs = set(NEEDS_DEFAULT).union(*(b.needs for b in parts))
    work = doc_data.workdir(doc.stem + "-py", needs)
    path = work / f"doc_{doc.stem}.py"
    path.write_text(script(parts), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, path.name], cwd=work, env=_env(doc_data.base),
        capture_output=True, text=True, timeout=TIMEOUT_S,
    )  # fmt: skip
    assert done.returncode == 0, f"{rel}: {path}\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    assert "Traceback" not in done.stderr, done.stderr[-6000:]


# -- the README's shell blocks ---------------------------------------------------------------------
PLACEHOLDER = re.compile(r"\b(DIR|FILE|ID|URL|MODEL_FOLDER|LISTS_DIR|TASK)\b|\[|\.\.\.")


def commands(block: Block) -> list[str]:
    """The commands of a shell block: continuation lines joined, comments dropped."""
    out, pending = [], ""
    for raw in block.code.splitlines():
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            words = line.split()
        if words:
            out.append(shlex.join(words))
    return out


#: README commands without placeholders that still cannot run here, with the reason.
SHELL_SKIPS = {
    "medimeta benchmark status runs/benchmark": "reads a benchmark folder the README never makes",
    "medimeta benchmark collect runs/benchmark": "reads a benchmark folder the README never makes",
}


def _shell_skip(command: str) -> str | None:
    """Why a README command does not run in the test (None: it runs)."""
    if command in SHELL_SKIPS:
        return SHELL_SKIPS[command]
    words = shlex.split(command)
    if words[0] != "medimeta":
        return "sets up an environment or runs the test suite (pip, venv, make)"
    if words[1:2] == ["download"] and "--dry-run" not in words and "--offline" not in words:
        return "downloads (needs the network)"
    if words[1:3] == ["weights", "get"]:
        return "downloads weights (needs the network)"
    if PLACEHOLDER.search(command):
        return "a reference line with placeholders (DIR, ID, FILE, [...])"
    return None


def _busi_zip(realdata: Path, home: Path) -> Path:
    """The publisher's Dataset_BUSI.zip layout, from busi-256, in ~/Downloads."""
    target = home / "Downloads" / "Dataset_BUSI.zip"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as zf:
            for png in sorted((realdata / "busi-256").glob("*/*.png")):
                zf.write(png, f"Dataset_BUSI_with_GT/{png.parent.name}/{png.name}")
    return target


@pytest.mark.realdata
@pytest.mark.timeout(TIMEOUT_S)
def test_readme_shell_blocks_run(doc_data: DocData) -> None:
    _busi_zip(doc_data.realdata, doc_data.base / "home")
    work = doc_data.base / "work" / "README-sh"
    work.mkdir(parents=True)
    ran, left_out = [], []
    for block in blocks(REPO / "README.md"):
        if block.lang != "bash":
            continue
        if block.skip:
            left_out.append((block.where, block.skip))
            continue
        for command in commands(block):
            why = _shell_skip(command)
            if why:
                left_out.append((command, why))
                continue
            env = _env(doc_data.base)
            # as the shell would: ~/ is HOME (the test's), medimeta this checkout's
            args = [env["HOME"] + w[1:] if w.startswith("~/") else w for w in shlex.split(command)]
            done = subprocess.run(
                [sys.executable, "-m", "medimeta", *args[1:]], cwd=work, env=env,
                capture_output=True, text=True, timeout=TIMEOUT_S,
            )  # fmt: skip
            assert done.returncode == 0, f"{block.where}: {command}\n{done.stdout}\n{done.stderr}"
            assert "Traceback" not in done.stderr, done.stderr
            ran.append(command)
    print("ran:", *ran, "left out:", *(f"{c}  [{w}]" for c, w in left_out), sep="\n  ")
    assert any(c.startswith("medimeta fewshot") for c in ran)
    assert any(c.startswith("medimeta build bus") for c in ran)
    assert {"medimeta info dr_regular", "medimeta backbones list"} <= set(ran)
    assert set(SHELL_SKIPS) <= {c for c, _ in left_out}, "a SHELL_SKIPS entry is not in README"


def test_skipped_blocks_are_the_expected_ones() -> None:
    found = {(str(b.file.relative_to(REPO)), b.skip) for p in DOCS for b in blocks(p) if b.skip}
    assert found == EXPECTED_SKIPS


def test_the_parser_reads_marks_and_doctests(tmp_path: Path) -> None:
    doc = tmp_path / "x.md"
    doc.write_text(
        "text\n<!-- doc-test: needs pbc, busi_folder -->\n```python\nx = 1\n```\n"
        "<!-- doc-test: skip (needs a GPU) -->\n```python\nimport torch\n```\n"
        "```python\n>>> x + 1\n2\n```\n",
        encoding="utf-8",
    )
    found = blocks(doc)
    assert [b.line for b in found] == [3, 7, 10]
    assert found[0].needs == {"pbc", "busi_folder"} and found[1].skip == "needs a GPU"
    code = script([found[0], found[2]]).replace(str(doc), "x.md")
    namespace: dict[str, object] = {"__name__": "__main__"}
    exec(compile(code, "doc", "exec"), namespace)  # the doctest passes
    bad = Block(doc, 1, "python", ">>> 1 + 1\n3\n")
    with pytest.raises(AssertionError, match="doctest"):
        exec(compile(script([bad]), "doc", "exec"), {"__name__": "__main__"})
    assert doctest  # the module is what the generated scripts use
    assert commands(Block(doc, 1, "bash", "medimeta a \\\n  --b c  # note\n# only\n")) == [
        "medimeta a --b c"
    ]
