"""The report in a real headless browser: it renders, every image loads, no console or script
error, no network request, every link of the index resolves. Also that the checker catches a
broken image, a script error and a dead link."""

from __future__ import annotations

from pathlib import Path

import pytest
from browser_check import check_site
from PIL import Image
from plot_toys import make_runs

from medimeta.plots import write_report


@pytest.fixture(scope="module")
def site(toy_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("browser")
    return write_report(toy_root, base / "site", runs=[make_runs(base / "runs")]).index


def test_report_loads_cleanly_in_chromium(site: Path) -> None:
    assert check_site(site) == []


def test_the_checker_catches_broken_pages(tmp_path: Path) -> None:
    Image.new("L", (4, 4), 128).save(tmp_path / "ok.png")
    (tmp_path / "broken.html").write_text(
        "<html><body><p>x</p><img src='missing.png'></body></html>", encoding="utf-8"
    )
    (tmp_path / "script.html").write_text(
        "<html><body><p>x</p><script>undefinedFunction()</script></body></html>",
        encoding="utf-8",
    )
    (tmp_path / "remote.html").write_text(
        "<html><body><p>x</p><img src='https://example.org/a.png'></body></html>",
        encoding="utf-8",
    )
    (tmp_path / "index.html").write_text(
        "<html><body><p>index</p>"
        + '<img src="ok.png">'
        + '<a href="broken.html">b</a> <a href="script.html">s</a> <a href="remote.html">r</a>'
        + ' <a href="gone.html">g</a></body></html>',
        encoding="utf-8",
    )
    problems = "\n".join(check_site(tmp_path / "index.html"))
    assert "broken.html: image not loaded: missing.png" in problems
    assert "script.html: script error" in problems and "undefinedFunction" in problems
    assert "remote.html: network request: https://example.org/a.png" in problems
    assert "link gone.html does not resolve" in problems
    assert "index.html:" not in problems.replace("index.html: link gone.html", "")
