"""Hostile prediction files for ``score`` and ``evaluate``: each class of fault is one clear line.

One valid file is generated (3 classes, 30 samples, or an episode file), then edited as a
careless or hostile user would: repeated rows, a sample twice with other scores, a fourth score
column, indices that are not integers, a header without ``target``, labels out of range, scores
that are not finite, ragged rows, ... Every case runs through the ``medimeta`` entry point:
exit code 2, one ``error:`` line naming the file, the line and the expected value, no
traceback, and nothing written (the subgroup report files do not appear).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medimeta.cli.app import main
from medimeta.errors import FormatError
from medimeta.evaluate.prediction_reader import DuplicateRowsWarning
from medimeta.evaluate.predictions import Predictions, read_predictions, write_predictions
from medimeta.evaluate.subgroups import subgroup_report

N = 30


def _valid(
    path: Path, *, episodes: bool = False, target: str = "MULTICLASS_CLASSIFICATION"
) -> Path:
    rng = np.random.default_rng(3)
    labels = np.arange(N) % 3
    raw = rng.random((N, 3)) + np.eye(3)[labels]
    scores = raw / raw.sum(1, keepdims=True)
    names = ["normal", "benign", "malignant"]
    if target == "BINARY_CLASSIFICATION":
        labels, scores, names = labels % 2, scores[:, 1], ["no", "yes"]
    preds = Predictions(
        np.arange(N) * 2, labels, scores, target, "toy", "case category", "test", names,
        list(range(len(names))), np.repeat(np.arange(3), 10) if episodes else None,
    )  # fmt: skip
    return write_predictions(path, preds)


Edit = Callable[[list[str]], list[str]]


def _line(number: int, change: Callable[[str], str]) -> Edit:
    """Edit line ``number`` (1-based, as the errors count)."""

    def edit(lines: list[str]) -> list[str]:
        lines[number - 1] = change(lines[number - 1])
        return lines

    return edit


def _field(number: int, column: int, value: str) -> Edit:
    def change(text: str) -> str:
        fields = text.split(",")
        fields[column] = value
        return ",".join(fields)

    return _line(number, change)


def _meta(change: Callable[[dict], object]) -> Edit:
    def edit(lines: list[str]) -> list[str]:
        meta = json.loads(lines[1][2:])
        out = change(meta)
        lines[1] = "# " + json.dumps(meta if out is None else out)
        return lines

    return edit


def _every_row_twice(lines: list[str]) -> list[str]:
    return lines[:3] + [row for row in lines[3:] for _ in (0, 1)]


def _same_index_other_scores(lines: list[str]) -> list[str]:
    fields = lines[3].split(",")
    fields[-1] = "0.987"
    return [*lines, ",".join(fields)]


def _fourth_score_column(lines: list[str]) -> list[str]:
    return lines[:2] + [lines[2] + ",score_3"] + [r + ",0.1" for r in lines[3:]]


#: class of fault -> (edit, words the one error line must hold)
FAULTS: dict[str, tuple[Edit, tuple[str, ...]]] = {
    "every-row-twice": (_every_row_twice, ("line 5: repeats line 4", "--dedupe")),
    "same-index-other-scores": (
        _same_index_other_scores,
        ("line 34: sample index 0 again", "other scores than line 4"),
    ),
    "fourth-score-column": (
        _fourth_score_column,
        ("line 3: header is not", "with 3 class_names", "score_2", "score_3"),
    ),
    "score-column-missing": (
        _line(3, lambda t: t.rsplit(",", 1)[0]),
        ("line 3: header is not", "expected: 'index,label,score_0,score_1,score_2'"),
    ),
    "index-not-integer": (_field(5, 0, "1.5"), ("line 5: index is not an integer", "'1.5'")),
    "index-negative": (_field(6, 0, "-4"), ("line 6: index is not an integer >= 0", "'-4'")),
    "index-text": (_field(7, 0, "abc"), ("line 7: index", "'abc'")),
    "label-out-of-range": (_field(8, 1, "3"), ("line 8: label is not an integer in 0..2", "'3'")),
    "label-float": (_field(9, 1, "1.0"), ("line 9: label", "'1.0'")),
    "score-not-a-number": (_field(10, 3, "high"), ("line 10: score_1 is not a finite", "'high'")),
    "score-nan": (_field(11, 2, "nan"), ("line 11: score_0 is not a finite number",)),
    "score-inf": (_field(12, 4, "inf"), ("line 12: score_2", "'inf'")),
    "ragged-row": (_line(13, lambda t: t + ",0.5"), ("line 13: wrong number of fields", "5")),
    "short-row": (_line(14, lambda t: t.rsplit(",", 1)[0]), ("line 14: wrong number of fields",)),
    "header-without-target": (
        _meta(lambda m: m.pop("target") and None),
        ("line 2: header names no known task target", "key: target"),
    ),
    "target-unknown": (
        _meta(lambda m: m.update(target="REGRESSION")),
        ("line 2: header names no known task target", "'REGRESSION'"),
    ),
    "meta-not-json": (
        _line(2, lambda t: t[:-5]),
        ("line 2: header is not valid JSON",),
    ),
    "meta-not-object": (_meta(lambda m: [1, 2]), ("line 2: header is not a JSON object",)),
    "class-names-not-strings": (
        _meta(lambda m: m.update(class_names=[1, 2, 3])),
        ("line 2: class_names is not a list of strs",),
    ),
    "class-keys-length": (
        _meta(lambda m: m.update(class_keys=[0, 1])),
        ("line 2: class_names and class_keys differ in length", "expected: 3; actual: 2"),
    ),
    "columns-reordered": (
        _line(3, lambda t: ",".join(reversed(t.split(",")))),
        ("line 3: header is not",),
    ),
    "no-rows": (lambda lines: lines[:3], ("line 4: no prediction rows",)),
    "no-header": (lambda lines: lines[:2], ("line 3: no header line",)),
    "not-a-prediction-file": (
        lambda lines: ["index,label,score", *lines[3:]],
        ("not a medimeta prediction file",),
    ),
}


def _write(tmp_path: Path, edit: Edit, **kw: object) -> Path:
    path = _valid(tmp_path / "predictions_test.csv", **kw)  # type: ignore[arg-type]
    lines = edit(path.read_text(encoding="utf-8").splitlines())
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def _annotations(tmp_path: Path) -> Path:
    frame = pd.DataFrame(
        {
            "filepath": [f"images/{i:06d}.tiff" for i in range(2 * N)],
            "site": ["A", "B"] * N,
        }
    )
    path = tmp_path / "annotations.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_hostile_prediction_file_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fault: str
) -> None:
    edit, words = FAULTS[fault]
    path = _write(tmp_path, edit)
    before = path.read_bytes()
    with pytest.raises(FormatError) as info:
        read_predictions(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    ann = _annotations(tmp_path)
    for args in (
        ["score", str(path)],
        ["evaluate", "--predictions", str(path), "--by", "site", "--annotations", str(ann)],
    ):
        code, out, err = _run(args, capsys)
        assert code == 2, (out, err)
        assert "Traceback" not in out + err and len(err.strip().splitlines()) == 1, err
        assert err.startswith(f"error: {path}: "), err
        for word in words:
            assert word in err, (word, err)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["annotations.csv", path.name]


def test_episode_files_key_samples_by_episode_and_index(tmp_path: Path) -> None:
    path = _valid(tmp_path / "q.csv", episodes=True)
    lines = path.read_text().splitlines()
    assert lines[2].startswith("index,episode,label,")
    # the same index in two episodes is two samples; twice in one episode is a repeat
    ok = [*lines[:4], lines[3].replace(",0,", ",1,", 1)]
    path.write_text("\n".join(ok) + "\n")
    assert len(read_predictions(path)) == 2
    path.write_text("\n".join([*lines, lines[5]]) + "\n")
    with pytest.raises(FormatError, match=r"line 34: repeats line 6 \(\(episode, sample index\)"):
        read_predictions(path)
    path.write_text("\n".join([*lines[:5], lines[5].replace(",0,", ",x,", 1)]) + "\n")
    with pytest.raises(FormatError, match="line 6: episode is not an integer"):
        read_predictions(path)


def test_binary_files_have_one_score_column(tmp_path: Path) -> None:
    path = _valid(tmp_path / "b.csv", target="BINARY_CLASSIFICATION")
    assert read_predictions(path).scores.shape == (N, 1)
    lines = path.read_text().splitlines()
    two = lines[:2] + ["index,label,score_0,score_1"] + [f"{r},0.5" for r in lines[3:]]
    path.write_text("\n".join(two) + "\n")
    with pytest.raises(FormatError, match="expected: 'index,label,score'"):
        read_predictions(path)


def test_dedupe_drops_verbatim_repeats_says_so_and_keeps_n(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, _every_row_twice)
    with pytest.warns(DuplicateRowsWarning, match=r"dropped 30 repeated rows, lines 5 \(= 4\)"):
        preds = read_predictions(path, dedupe=True)
    assert len(preds) == N
    clean = read_predictions(_valid(tmp_path / "clean.csv"))
    assert np.array_equal(preds.scores, clean.scores)
    code, out, err = _run(["score", str(path), "--dedupe", "--json"], capsys)
    assert code == 0 and json.loads(out)["n"] == N and "dropped 30 repeated rows" in err
    # the subgroup interval is that of N samples, not of 2N
    frame = pd.read_csv(_annotations(tmp_path))
    with pytest.warns(DuplicateRowsWarning):
        deduped = read_predictions(path, dedupe=True)
    a = subgroup_report(deduped, frame, ["site"], n_boot=200, metric="accuracy")
    b = subgroup_report(clean, frame, ["site"], n_boot=200, metric="accuracy")
    assert a["overall"]["n"] == N and a["overall"]["ci"] == b["overall"]["ci"]
    # conflicting repeats are refused even with --dedupe
    other = _write(tmp_path, _same_index_other_scores)
    code, _, err = _run(["score", str(other), "--dedupe"], capsys)
    assert code == 2 and "again, with another label or other scores" in err


@pytest.mark.parametrize(
    ("bins", "words"),
    [
        ("site=a,b", "edge 'a' is not a finite number"),
        ("site", "takes COLUMN=e1,e2"),
        ("=1,2", "takes COLUMN=e1,e2"),
        ("age=5,1", "at least two increasing edges"),
        ("age=nan,3", "edge 'nan' is not a finite number"),
    ],
)
def test_bad_bins_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bins: str, words: str
) -> None:
    path = _valid(tmp_path / "p.csv")
    ann = _annotations(tmp_path)
    args = ["evaluate", "--predictions", str(path), "--by", "site", "--annotations", str(ann)]
    code, out, err = _run([*args, "--bins", bins], capsys)
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in out + err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["annotations.csv", "p.csv"]


def test_unreadable_annotations_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _valid(tmp_path / "p.csv")
    bad = tmp_path / "ann.csv"
    bad.write_bytes(b'a,b\n"1,2\n\xff\xfe')
    for ann, words in ((bad, "cannot be read as CSV"), (tmp_path / "no.csv", "not found")):
        args = ["evaluate", "--predictions", str(path), "--by", "a", "--annotations", str(ann)]
        code, _out, err = _run(args, capsys)
        assert code == 2 and words in err and len(err.strip().splitlines()) == 1, err
