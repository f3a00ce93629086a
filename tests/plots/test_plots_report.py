"""The HTML report: files, relative links only, escaping, and the order files are written."""

from __future__ import annotations

import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml
from plot_toys import make_runs

import medimeta.plots.report_datasets as report_datasets
from medimeta.plots import write_report
from medimeta.plots.html import licence_url, rel_url


class Links(HTMLParser):
    """Every src/href attribute of a page, with its tag and class."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str, str, str]] = []  # (tag, attribute, value, class)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        d = dict(attrs)
        for key in ("src", "href"):
            if d.get(key) is not None:
                self.found.append((tag, key, d[key] or "", d.get("class") or ""))


def links_of(page: Path) -> list[tuple[str, str, str, str]]:
    parser = Links()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser.found


@pytest.fixture(scope="module")
def report(toy_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report")
    runs = make_runs(out.parent / f"{out.name}-runs")
    rep = write_report(toy_root, out / "site", runs=[runs], seed=0)
    assert rep.problems == []
    return rep.index


def test_report_files(report: Path) -> None:
    site = report.parent
    for name in (
        "index.html",
        "overview.png",
        "fewshot.png",
        "datasets/toy_gray.html",
        "datasets/toy_gray/montage.png",
        "datasets/toy_gray/labels.png",
        "datasets/toy_gray/splits.png",
        "datasets/toy_gray/classes_0.png",
        "datasets/toy_rgb.html",
    ):
        assert (site / name).is_file(), name
    run_pages = sorted(p.name for p in (site / "runs").glob("*.html"))
    assert len(run_pages) == 4
    sup = next(p for p in (site / "runs").iterdir() if p.is_dir() and "resnet18" in p.name)
    assert sorted(f.name for f in sup.iterdir()) == [
        "curves.png",
        "reliability_test.png",
        "roc_test.png",
        "roc_val.png",
    ]
    index = report.read_text(encoding="utf-8")
    assert "toy_gray" in index and "OK" in index and "CC BY-SA 4.0" in index
    assert "ProtoNet" in index and "Linear probe" in index
    page = (site / "datasets" / "toy_rgb.html").read_text(encoding="utf-8")
    assert "18 images" in page and "finding labels" in page and "positives per label" in page


def test_every_link_is_local_except_licence_links(report: Path) -> None:
    pages = sorted(report.parent.rglob("*.html"))
    remote = []
    for page in pages:
        for tag, attr, value, cls in links_of(page):
            if re.match(r"^[a-z]+:", value):
                remote.append((page.name, tag, attr, value, cls))
                continue
            assert (page.parent / value).resolve().is_file(), (page, value)
    assert remote, "the licence should be linked"
    for _page, tag, attr, value, cls in remote:
        assert (tag, attr, cls) == ("a", "href", "licence"), value
        assert value.startswith("https://creativecommons.org/licenses/")
    text = "".join(p.read_text(encoding="utf-8") for p in pages)
    assert "<script" not in text and "@import" not in text and "url(" not in text


def test_user_strings_are_escaped(toy_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    shutil.copytree(toy_root / "toy_gray", root / "toy_gray")
    info_path = root / "toy_gray" / "info.yaml"
    info = yaml.safe_load(info_path.read_text())
    info["name"] = '<script>alert("x")</script> & Co'
    info["summary"] = "<img src=x onerror=alert(1)>"
    info_path.write_text(yaml.safe_dump(info, sort_keys=False))
    rep = write_report(root, tmp_path / "site", verify=False)
    text = (tmp_path / "site" / "datasets" / "toy_gray.html").read_text(encoding="utf-8")
    index = rep.index.read_text(encoding="utf-8")
    for page in (text, index):
        assert "<script>" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Co" in text


def test_index_is_written_last_and_never_links_a_missing_picture(
    toy_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rep = write_report(toy_root, tmp_path / "ok")
    assert rep.files[-1] == rep.index
    pictures = [f for f in rep.files if f.suffix == ".png"]
    pages = [f for f in rep.files if f.suffix == ".html"]
    assert max(rep.files.index(p) for p in pictures) < rep.files.index(rep.index)
    assert len(pages) == 3

    calls = {"n": 0}
    real = report_datasets.write_dataset_page

    def crash_on_second(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # as if the process were stopped here
        return real(*args, **kwargs)

    monkeypatch.setattr("medimeta.plots.report.write_dataset_page", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        write_report(toy_root, tmp_path / "crash")
    assert not (tmp_path / "crash" / "index.html").exists()
    for page in (tmp_path / "crash").rglob("*.html"):
        for _tag, _attr, value, _cls in links_of(page):
            if not value.startswith(("https://", "../index.html")):
                assert (page.parent / value).is_file(), value


def test_a_picture_that_fails_becomes_a_note(
    toy_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args, **_kwargs):  # type: ignore[no-untyped-def]
        raise OSError("images.hdf5 is unreadable")

    monkeypatch.setattr(report_datasets, "montage", broken)
    rep = write_report(toy_root, tmp_path / "site", ids=["toy_gray"])
    assert any("unreadable" in p for p in rep.problems)
    page = (tmp_path / "site" / "datasets" / "toy_gray.html").read_text(encoding="utf-8")
    assert "Could not draw montage of toy_gray" in page and "montage.png" not in page


def test_link_helpers() -> None:
    assert licence_url("CC BY-NC-SA 4.0") == "https://creativecommons.org/licenses/by-nc-sa/4.0/"
    assert licence_url("proprietary") is None
    assert rel_url("datasets/a b.png") == "datasets/a%20b.png"
    for bad in ("/etc/passwd", "https://x.org/a.png", "a/../../b"):
        with pytest.raises(ValueError):
            rel_url(bad)
