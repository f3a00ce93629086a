"""MedFM's lists as published (real lines, committed in tests/fixtures/medfm_real).

Every train list the fixture holds (chest, colon and endo; 1-, 5- and 10-shot; README.md there
says which of MedFM's lists the stored copy of the repository had) is imported on its own:
its episode's support equals the list line for line (repeats kept), its query equals the test
list, and the support size, distinct images and val overlap are the ones measured on the
files. Chest and endo val lists hold images of their support: they are imported anyway, the
shared images are recorded in the episode file and the run record, and the import says so
once. A 5-shot list of colon and endo, and chest's 10-shot list (the stored copy has no chest
5-shot train list), run through ``medimeta fewshot``. A train list with no lines is refused
with the file and the reason, and nothing is written.
"""

from __future__ import annotations

import json
import re
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
TRAIN_LIST = re.compile(r"^(?P<ds>[a-z]+)_(?P<shots>\d+)-shot_train_exp(?P<exp>\d+)\.txt$")
#: (dataset, shots, experiment) -> (support lines, distinct support images, val lines or None
#: when the fixture has no val list of that experiment, val images in the support), as
#: measured on the committed files (fixtures/medfm_real/README.md)
MEASURED: dict[tuple[str, int, int], tuple[int, int, int | None, set[str]]] = {
    ("chest", 1, 1): (19, 19, None, set()),
    ("chest", 1, 2): (19, 18, 20, {"5E114EFD49706C8.png"}),
    ("chest", 1, 3): (19, 19, None, set()),
    ("chest", 1, 5): (19, 19, None, set()),
    ("chest", 10, 1): (190, 170, None, set()),
    ("chest", 10, 4): (190, 170, None, set()),
    ("chest", 10, 5): (190, 171, None, set()),
    ("colon", 1, 1): (30, 30, 20, set()),
    ("colon", 5, 4): (304, 304, None, set()),
    ("colon", 10, 2): (477, 477, None, set()),
    ("colon", 10, 3): (785, 785, None, set()),
    ("colon", 10, 4): (549, 549, 20, set()),
    ("colon", 10, 5): (714, 714, 20, set()),
    ("endo", 1, 4): (28, 24, 20, set()),
    ("endo", 5, 2): (151, 127, None, set()),
    ("endo", 5, 3): (
        171,
        167,
        20,
        {
            "13333_2021.01_0003_41332418.png",
            "13333_2021.09_0001_51688926.png",
            "13333_2021.09_0001_51688917.png",
        },
    ),
    ("endo", 10, 1): (422, 358, None, set()),
    ("endo", 10, 2): (426, 366, None, set()),
    ("endo", 10, 5): (341, 289, 20, {"13333_2021.08_0007_51345154.png"}),
}
#: one list per dataset through fewshot: 5-shot where the stored copy has one; chest has no
#: 5-shot train list there, so its 10-shot list of experiment 1 runs instead
FEWSHOT = [("chest", 10, 1), ("colon", 5, 4), ("endo", 5, 3)]
pytestmark = pytest.mark.filterwarnings("ignore::medimeta.episodes.medfm.MissingValListWarning")
TINY = ["--backbone", "tiny_cnn", "--pretrained", "none", "--image-size", "16", "--no-cache"]


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("medfm-real")
    out = {"root": base / "root"}
    for key in ("chest", "colon", "endo"):
        folder = fake_from_lists(base / "src", key, sorted((REAL / key).glob("*.txt")))
        convert_medfmc(folder, out["root"])
        out[key] = folder
    return out


def _names(root: Path, key: str, rows: object) -> list[str]:
    paths = DatasetFolder(root / f"medfmc_{key}").annotations["original_filepath"].tolist()
    return [paths[int(i)].split("/", 1)[1] for i in rows]  # type: ignore[attr-defined]


def test_every_committed_train_list_is_measured() -> None:
    committed = set()
    for path in REAL.glob("*/*_train_*.txt"):
        match = TRAIN_LIST.match(path.name)
        assert match and match["ds"] == path.parent.name, path
        committed.add((match["ds"], int(match["shots"]), int(match["exp"])))
    assert committed == set(MEASURED)


@pytest.mark.parametrize(("key", "shots", "exp"), sorted(MEASURED))
def test_real_lists_import_as_published(
    real: dict[str, Path], tmp_path: Path, key: str, shots: int, exp: int
) -> None:
    lines, unique, val, shared = MEASURED[key, shots, exp]
    root, lists = real["root"], real[key]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        (d,) = import_medfm(
            lists, root, f"medfmc_{key}", tmp_path, shots=[shots], experiments=[exp]
        )
    eps = EpisodeSet.load(d.path, root)  # every check against the data
    (ep,) = eps
    train = lists / f"{key}_{shots}-shot_train_exp{exp}.txt"
    assert train.read_bytes() == (REAL / key / train.name).read_bytes()
    assert _names(root, key, ep.support_indices) == list_names(train, key)  # repeats kept
    assert _names(root, key, ep.query_indices) == list_names(lists / "test_WithLabel.txt", key)
    assert (d.lines, d.unique, d.duplicates, d.val) == (lines, unique, lines - unique, val)
    protocol = eps.header["protocol"]
    assert (protocol["shots"], protocol["experiment"]) == (shots, exp)
    assert set(_names(root, key, protocol["val_overlap"])) == shared and d.overlap == len(shared)
    said = [w for w in caught if issubclass(w.category, ValOverlapWarning)]
    assert len(said) == (1 if shared else 0)  # said once per import
    if shared:
        assert f"{key}: 1 of 1 official val lists share images with their support" in str(
            said[0].message
        )


@pytest.mark.parametrize(("key", "shots", "exp"), FEWSHOT)
def test_a_real_list_runs_through_fewshot_with_the_overlap_recorded(
    real: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    key: str,
    shots: int,
    exp: int,
) -> None:
    torch.set_num_threads(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (d,) = import_medfm(
            real[key], real["root"], f"medfmc_{key}", tmp_path / "eps", shots=[shots],
            experiments=[exp],
        )  # fmt: skip
    out = tmp_path / "run"
    args = ["fewshot", "--root", str(real["root"]), "--episodes-file", str(d.path)]
    try:
        main([*args, "--method", "linear-probe", *TINY, "--out", str(out), "-q"])
    except SystemExit as exc:
        assert not exc.code, capsys.readouterr()
    record = json.loads((out / "run.json").read_text())
    block = record["details"]["medfm"]
    shared = MEASURED[key, shots, exp][3]
    assert (block["protocol"]["shots"], block["protocol"]["experiment"]) == (shots, exp)
    assert block["protocol"]["val_overlap"] == len(shared)
    assert all(v is not None for v in block["metrics"].values())
    if shared:
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
    (d,) = import_medfm(
        real["colon"], real["root"], "medfmc_colon", tmp_path / "eps", shots=[1]
    )  # the small 1-shot list: this test is about the run record, not the list
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
