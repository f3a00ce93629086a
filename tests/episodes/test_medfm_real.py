"""MedFM's lists as published (a committed excerpt of real lines, tests/fixtures/medfm_real).

Chest and endo val lists hold images of their support: they are imported anyway, the shared
images are recorded in the episode file and the run record, and the import says so once.
Each episode's support equals its list line for line (repeats kept) and its query equals the
test list; a real list of each dataset runs through ``medimeta fewshot``. A train list with no
lines is refused with the file and the reason, and nothing is written.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch
from medfm_toys import fake_from_lists, list_names

from medimeta.cli.app import main
from medimeta.convert.medfmc import convert_medfmc
from medimeta.episodes import EpisodeSet
from medimeta.episodes.medfm import ValOverlapWarning, import_medfm
from medimeta.errors import EpisodeError
from medimeta.format.reader import DatasetFolder

REAL = Path(__file__).resolve().parents[1] / "fixtures" / "medfm_real"
#: dataset -> (shots, experiment) of its real train list, val images in the support (by name)
LISTS = {
    "chest": ((1, 2), {"5E114EFD49706C8.png"}),
    "colon": ((1, 1), set()),
    "endo": (
        (5, 3),
        {
            "13333_2021.01_0003_41332418.png",
            "13333_2021.09_0001_51688926.png",
            "13333_2021.09_0001_51688917.png",
        },
    ),
}
pytestmark = pytest.mark.filterwarnings("ignore::medimeta.episodes.medfm.MissingValListWarning")
TINY = ["--backbone", "tiny_cnn", "--pretrained", "none", "--image-size", "16", "--no-cache"]


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("medfm-real")
    out = {"root": base / "root"}
    for key in LISTS:
        folder = fake_from_lists(base / "src", key, sorted((REAL / key).glob("*.txt")))
        convert_medfmc(folder, out["root"])
        out[key] = folder
    return out


def _names(root: Path, key: str, rows: object) -> list[str]:
    paths = DatasetFolder(root / f"medfmc_{key}").annotations["original_filepath"].tolist()
    return [paths[int(i)].split("/", 1)[1] for i in rows]  # type: ignore[attr-defined]


@pytest.mark.parametrize("key", sorted(LISTS))
def test_real_lists_import_as_published(real: dict[str, Path], tmp_path: Path, key: str) -> None:
    (shots, exp), shared = LISTS[key]
    root, lists = real["root"], real[key]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        (d,) = import_medfm(lists, root, f"medfmc_{key}", tmp_path, shots=[shots])
    eps = EpisodeSet.load(d.path, root)  # every check against the data
    (ep,) = eps
    train = lists / f"{key}_{shots}-shot_train_exp{exp}.txt"
    assert train.read_bytes() == (REAL / key / train.name).read_bytes()
    assert _names(root, key, ep.support_indices) == list_names(train, key)  # repeats kept
    assert _names(root, key, ep.query_indices) == list_names(lists / "test_WithLabel.txt", key)
    protocol = eps.header["protocol"]
    assert set(_names(root, key, protocol["val_overlap"])) == shared and d.overlap == len(shared)
    said = [w for w in caught if issubclass(w.category, ValOverlapWarning)]
    assert len(said) == (1 if shared else 0)  # said once per import
    if shared:
        assert f"{key}: 1 of 1 official val lists share images with their support" in str(
            said[0].message
        )


def test_the_chest_repeat_and_overlap_are_counted(real: dict[str, Path], tmp_path: Path) -> None:
    with pytest.warns(ValOverlapWarning):
        (d,) = import_medfm(real["chest"], real["root"], "medfmc_chest", tmp_path)
    assert (d.lines, d.unique, d.duplicates, d.val, d.overlap) == (19, 18, 1, 20, 1)


@pytest.mark.parametrize("key", sorted(LISTS))
def test_a_real_list_runs_through_fewshot_with_the_overlap_recorded(
    real: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], key: str
) -> None:
    torch.set_num_threads(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (d,) = import_medfm(real[key], real["root"], f"medfmc_{key}", tmp_path / "eps")
    out = tmp_path / "run"
    args = ["fewshot", "--root", str(real["root"]), "--episodes-file", str(d.path)]
    try:
        main([*args, "--method", "linear-probe", *TINY, "--out", str(out), "-q"])
    except SystemExit as exc:
        assert not exc.code, capsys.readouterr()
    record = json.loads((out / "run.json").read_text())
    block = record["details"]["medfm"]
    assert block["protocol"]["val_overlap"] == len(LISTS[key][1])
    assert all(v is not None for v in block["metrics"].values())
    if LISTS[key][1]:
        assert "official val list shares" in (out / "results.md").read_text()


@pytest.mark.parametrize("content", ["", "\n\n  \n"])
def test_a_list_without_lines_is_refused_and_nothing_written(
    real: dict[str, Path], tmp_path: Path, content: str
) -> None:
    lists = tmp_path / "lists"
    lists.mkdir()
    for path in real["colon"].glob("*.txt"):
        (lists / path.name).write_bytes(path.read_bytes())
    (lists / "colon_5-shot_train_exp1.txt").write_text(content)
    out = tmp_path / "out"
    with pytest.raises(EpisodeError, match=r"colon_5-shot_train_exp1.txt: no list lines"):
        import_medfm(lists, real["root"], "medfmc_colon", out)
    assert not out.exists()  # the 1-shot list, read first, was not written either
    (lists / "colon_5-shot_train_exp1.txt").unlink()
    (lists / "test_WithLabel.txt").write_text(content)
    with pytest.raises(EpisodeError, match=r"test_WithLabel.txt: no list lines.*query"):
        import_medfm(lists, real["root"], "medfmc_colon", out)
    assert not out.exists()


def test_an_episode_file_whose_support_is_empty_is_refused(
    real: dict[str, Path], tmp_path: Path
) -> None:
    (d,) = import_medfm(real["colon"], real["root"], "medfmc_colon", tmp_path, shots=[1])
    data = json.loads(d.path.read_text())
    data["episodes"][0]["support"], data["episodes"][0]["support_labels"] = [], []
    from medimeta.episodes.fileio import _digest

    data["episodes_sha256"] = _digest(data["episodes"])  # a careful editor
    data["protocol"]["duplicates"] = 0
    d.path.write_text(json.dumps(data))
    with pytest.raises(EpisodeError, match="support is empty"):
        EpisodeSet.load(d.path)


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (lambda b: b["protocol"].pop("experiment"), "details.medfm.protocol.experiment"),
        (lambda b: b["protocol"]["lists"].pop("test"), "details.medfm.protocol.lists.test"),
        (lambda b: b.update(metrics={"auroc": "high"}), "details.medfm.metrics"),
        (lambda b: b.update(protocol=[]), "details.medfm.protocol"),
    ],
)
def test_results_medfm_refuses_an_unusable_block_in_one_line(
    real: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    edit: object,
    key: str,
) -> None:
    from medimeta.runs.integrity import seal

    torch.set_num_threads(1)
    (d,) = import_medfm(real["colon"], real["root"], "medfmc_colon", tmp_path / "eps")
    out = tmp_path / "run"
    args = ["fewshot", "--root", str(real["root"]), "--episodes-file", str(d.path)]
    try:
        main([*args, "--method", "protonet", *TINY, "--out", str(out), "-q"])
    except SystemExit as exc:
        assert not exc.code
    capsys.readouterr()
    data = json.loads((out / "run.json").read_text())
    edit(data["details"]["medfm"])  # type: ignore[operator]
    (out / "run.json").write_text(json.dumps(seal(data)))  # an editor who reseals it
    code = 0
    try:
        main(["results", "medfm", str(out)])
    except SystemExit as exc:
        code = int(exc.code or 0)
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and key in err, err
    assert "Traceback" not in err and "not one of the toolkit's own errors" not in err
