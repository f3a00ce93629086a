"""A newcomer's first hour (issue #29): typos get the closest name on every command that takes a
dataset or task id, a dataset id alone means its first task (with a note), no network is said
within seconds with the fix, help text keeps its words whole at 80 columns, and counts agree
with their nouns."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_cli_conventions import COMMANDS, _commands

from medimeta.cli.app import main
from medimeta.errors import UnknownNameError
from medimeta.logs import plural
from train.train_toys import make_learnable

REPO = Path(__file__).resolve().parents[2]
TINY = ["--backbone", "tiny_cnn", "--pretrained", "none", "--image-size", "16"]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``toy_rgb``: 90 RGB samples, tasks "case category" (first), Malignancy, ..."""
    path = tmp_path_factory.mktemp("newcomer")
    make_learnable(path, "toy_rgb", splits={"train": 30, "val": 0, "test": 60}, channels=3)
    return path


def _main(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    got = capsys.readouterr()
    return code, got.out, got.err


# -- did you mean, on every command that takes a dataset or task id -------------------------------
#: (command, arguments after it with R for the root and O for an output path, the suggestion)
TYPOS = [
    ("verify", ["buss", "--root", "R"], "bus"),
    ("verify", ["toy_rbg", "--root", "R"], "toy_rgb"),
    ("info", ["buss"], "bus"),
    ("info", ["toy_rbg", "--root", "R"], "toy_rgb"),
    ("build", ["buss", "--source", "R"], "bus"),
    ("download", ["buss", "--root", "O", "--offline"], "bus"),
    ("download", ["buss", "--root", "O", "--offline", "--dry-run"], "bus"),
    ("episodes sample", ["--root", "R", "--task", "toy_rbg", "--out", "O"], "toy_rgb"),
    (
        "episodes sample",
        ["--root", "R", "--task", "toy_rgb:case categroy", "--out", "O"],
        "case category",
    ),
    (
        "episodes import-medfm",
        ["R", "--root", "R", "--dataset", "toy_rbg", "--out", "O"],
        "toy_rgb",
    ),
    ("fewshot", ["--root", "R", "--target", "toy_rbg", "--out", "O"], "toy_rgb"),
    (
        "fewshot",
        ["--root", "R", "--target", "toy_rgb:case categroy", "--out", "O"],
        "case category",
    ),
    (
        "fewshot",
        [
            "--root",
            "R",
            "--target",
            "toy_rgb",
            "--sources",
            "toy_rbg",
            "--method",
            "mm-pt",
            "--out",
            "O",
            *TINY,
        ],
        "toy_rgb",
    ),
    ("train", ["toy_rbg", "--root", "R", "--out", "O"], "toy_rgb"),
    ("train", ["toy_rgb", "case categroy", "--root", "R", "--out", "O"], "case category"),
    ("benchmark", ["--root", "R", "--targets", "toy_rbg", "--out", "O", "--dry-run"], "toy_rgb"),
    (
        "benchmark",
        ["--root", "R", "--targets", "toy_rgb:case categroy", "--out", "O", "--dry-run"],
        "case category",
    ),
    (
        "benchmark",
        [
            "--root",
            "R",
            "--targets",
            "toy_rgb",
            "--sources",
            "toy_rbg",
            "--methods",
            "mm-pt",
            "--out",
            "O",
            "--dry-run",
            "--backbones",
            "tiny_cnn",
            "--pretrained",
            "none",
            "--shots",
            "2",
            "--query",
            "3",
        ],
        "toy_rgb",
    ),
    ("embed", ["toy_rbg", "--root", "R"], "toy_rgb"),
    ("audit", ["toy_rbg", "--root", "R", "--out", "O"], "toy_rgb"),
    ("audit", ["toy_rgb", "--root", "R", "--out", "O", "--task", "case categroy"], "case category"),
    ("montage", ["toy_rbg", "--root", "R", "--out", "O"], "toy_rgb"),
    (
        "montage",
        ["toy_rgb", "--root", "R", "--per-class", "1", "--task", "case categroy", "--out", "O"],
        "case category",
    ),
    ("plot labels", ["toy_rbg", "--root", "R", "--out", "O"], "toy_rgb"),
    (
        "plot labels",
        ["toy_rgb", "--task", "case categroy", "--root", "R", "--out", "O"],
        "case category",
    ),
    ("report", ["toy_rbg", "--root", "R", "--out", "O"], "toy_rgb"),
    ("weights get", ["resnet1B"], "resnet18"),
    ("weights verify", ["resnet1B"], "resnet18"),
]
#: Commands whose id arguments name something new (the id a conversion writes), not a lookup.
NEW_IDS = {"convert csv", "convert folder", "convert medfmc", "convert medmnist", "weights add"}
ID_PARAMS = {
    "ids",
    "dataset",
    "dataset_id",
    "task",
    "target",
    "targets",
    "sources",
    "name",
    "names",
}


def test_every_command_taking_an_id_is_checked_for_typos() -> None:
    takes_ids = {
        name
        for name, cmd in COMMANDS.items()
        if any(p.name in ID_PARAMS for p in cmd.params) and name not in NEW_IDS
    }
    assert takes_ids == {command for command, _, _ in TYPOS}


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize(
    ("command", "args", "closest"), TYPOS, ids=[f"{c} {' '.join(a[:2])}" for c, a, _ in TYPOS]
)
def test_a_typo_gets_the_closest_name(
    command: str,
    args: list[str],
    closest: str,
    root: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MEDIMETA_OFFLINE", "1")
    monkeypatch.setenv("MEDIMETA_WEIGHTS", str(tmp_path / "weights"))
    swap = {"R": str(root), "O": str(tmp_path / "out")}
    code, out, err = _main([*command.split(), *(swap.get(a, a) for a in args)], capsys)
    assert code in (1, 2), out + err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"did you mean {closest!r}" in errors[0], out + err
    assert "Traceback" not in err
    made = [p.name for p in (tmp_path / "out").rglob("*")]
    assert not [n for n in made if n == "run.json" or n.startswith("episode_")]  # nothing ran


def test_an_unknown_name_without_choices_says_what_would_be_valid() -> None:
    err = UnknownNameError("task reference", "bus:", [], expected="DATASET or DATASET:TASK")
    assert "Valid values" not in str(err) and "DATASET or DATASET:TASK" in str(err)
    bare = UnknownNameError("method", "x", [])
    assert "Valid values" not in str(bare) and "no method to choose from" in str(bare)
    listed = UnknownNameError("dataset id", "buss", ["bus", "crc"])
    assert "did you mean 'bus'" in str(listed) and "Valid values: 'bus', 'crc'" in str(listed)


# -- a dataset id alone means its first task ------------------------------------------------------
def test_fewshot_train_and_episodes_take_a_bare_dataset_id(root: Path, tmp_path: Path) -> None:
    """As a user runs them (a new interpreter: the note is a one-line warning on stderr)."""
    note = "note: 'toy_rgb' means its first task: toy_rgb:case category"
    eps = ["--shots", "2", "--query", "3", "--episodes", "2", "--root", str(root)]
    fewshot = ["fewshot", "--target", "toy_rgb", "--method", "protonet", *eps, *TINY]
    _, done = _fresh([*fewshot, "--out", str(tmp_path / "fs")], {})
    assert done.returncode == 0, done.stderr
    assert done.stderr.count(note) == 1, done.stderr
    assert "protonet toy_rgb:case category: AUROC" in done.stdout + done.stderr
    train = ["train", "toy_rgb", "--root", str(root), *TINY, "--epochs", "1", "-q"]
    _, done = _fresh([*train, "--batch-size", "16", "--out", str(tmp_path / "train")], {})
    assert done.returncode == 0, done.stderr
    assert note in done.stderr and (tmp_path / "train" / "run.json").is_file()
    sample = ["episodes", "sample", "--task", "toy_rgb", *eps, "--out", str(tmp_path / "e.json")]
    _, done = _fresh(sample, {})
    assert done.returncode == 0, done.stderr
    assert note in done.stderr and "of toy_rgb:case category" in done.stdout


def test_the_python_api_takes_a_bare_dataset_id(root: Path, tmp_path: Path) -> None:
    from medimeta.data.dataset import MedIMeta
    from medimeta.errors import Note
    from medimeta.train.fewshot import EpisodePlan, FewShotConfig, RunSettings, run_fewshot

    with pytest.warns(Note, match="first task: toy_rgb:case category"):
        ds = MedIMeta(root, "toy_rgb", split="test")
    assert ds.task_name == "case category"
    config = FewShotConfig(method="protonet", backbone="tiny_cnn", pretrained="none", image_size=16)
    with pytest.warns(Note, match="first task: toy_rgb:case category"):
        record = run_fewshot(
            root,
            "toy_rgb",
            config,
            episodes=EpisodePlan(shots=2, queries=3, episodes=1),
            run=RunSettings(out_dir=tmp_path / "fs", progress=False),
        )
    assert record.target_id == "toy_rgb:case category"


# -- no network: one line within seconds, with the fix --------------------------------------------
@pytest.fixture(scope="module")
def black_hole() -> Iterator[str]:
    """``http://127.0.0.1:PORT`` where a connection is never answered (the listening socket's
    queue is full and nothing accepts), as with an unroutable address."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.settimeout(0.2)
        with contextlib.suppress(OSError):  # queued, then refused: the queue is full
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    try:
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=0.3)
        yield f"http://127.0.0.1:{port}"
    finally:
        for s in [*fillers, server]:
            s.close()


def _refused() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _fresh(args: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    """``medimeta ARGS`` in a new interpreter, timed from start to exit."""
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "medimeta", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO / "src"), "COLUMNS": "250", **env},
    )
    return time.perf_counter() - t0, done


def _one_line_with_a_fix(seconds: float, done: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode in (1, 2), done.stdout + done.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "Traceback" not in done.stderr and "fix:" in lines[0], lines[0]
    assert seconds < 3.0, f"{seconds:.1f} s: {lines[0]}"
    return lines[0]


@pytest.mark.parametrize(
    "where", ["unroutable", "black hole", "refused", "MEDIMETA_OFFLINE", "HF_HUB_OFFLINE"]
)
def test_weights_get_without_network_fails_in_seconds(
    where: str, black_hole: str, tmp_path: Path
) -> None:
    urls = {"unroutable": "http://10.255.255.1", "black hole": black_hole, "refused": _refused()}
    env = {"MEDIMETA_WEIGHTS": str(tmp_path / "w"), "TORCH_HOME": str(tmp_path / "torch")}
    env.update(MEDIMETA_OFFLINE="", HF_HUB_OFFLINE="")  # none of this session's settings
    if where in urls:
        env["MEDIMETA_WEIGHTS_MIRROR"] = urls[where]
    else:
        env[where] = "1"
    seconds, done = _fresh(["weights", "get", "resnet18"], env)
    line = _one_line_with_a_fix(seconds, done)
    assert "--offline --from DIR" in line and str(tmp_path / "w") in line  # the cache folder
    if where in ("black hole", "refused"):
        assert "cannot reach 127.0.0.1" in line
    assert not list((tmp_path / "w").glob("*.pth"))


@pytest.mark.parametrize("where", ["black hole", "refused"])
def test_download_without_network_fails_in_seconds(
    where: str, black_hole: str, tmp_path: Path
) -> None:
    url = black_hole if where == "black hole" else _refused()
    env = {"MEDIMETA_MIRROR": url, "MEDIMETA_OFFLINE": ""}
    seconds, done = _fresh(["download", "bus", "--root", str(tmp_path)], env)
    line = _one_line_with_a_fix(seconds, done)
    assert "cannot reach 127.0.0.1" in line and "--offline --from DIR" in line
    seconds, done = _fresh(["download", "bus", "--root", str(tmp_path), "--dry-run"], env)
    assert done.returncode == 0 and seconds < 3.0, (seconds, done.stderr)
    assert "0 B" not in done.stdout and "1 file of unknown size" in done.stdout
    assert "Traceback" not in done.stderr


# -- help and messages --------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_keeps_every_word_whole_at_80_columns(name: str) -> None:
    """A word of an option's help is never cut across two lines (at a hyphen or mid-word)."""
    command = dict(_commands())[name]  # a fresh command: its help as formatted below
    ctx = command.context_class(command, info_name=name, terminal_width=80, max_content_width=80)
    shown = command.get_help(ctx)  # fills in the helps built when shown (fewshot --method)
    assert max(len(line) for line in shown.splitlines()) <= 80, shown
    flat = " ".join(" ".join(line.split()) for line in shown.splitlines())
    for param in command.params:
        for word in (getattr(param, "help", None) or "").split():
            assert word in flat, f"{name} {param.name}: {word!r} is cut in\n{shown}"


#: A counted noun with "(s)": ``f"{n} file(s)"``, ``f"{len(x)} listed image(s)"``.
COUNTED = re.compile(r"\{[^{}!]+\}\s+(?:[\w-]+\s+)?[a-z]+\(s\)")


def test_counts_agree_with_their_nouns() -> None:
    assert plural(1, "dataset") == "1 dataset" and plural(2, "dataset") == "2 datasets"
    assert plural(0, "class") == "0 classes" and plural(1, "entry") == "1 entry"
    assert plural(1234, "pair", thousands=True) == "1,234 pairs"
    offenders = [
        f"{path.relative_to(REPO)}: {found}"
        for path in sorted((REPO / "src" / "medimeta").rglob("*.py"))
        for found in COUNTED.findall(path.read_text(encoding="utf-8"))
    ]
    assert not offenders, offenders  # "2 file(s)": plural() says "2 files"
