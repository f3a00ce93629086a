"""The audit's pictures: thumbnails of pairs, leaks and suspect labels in pictures/, listed in
report.json, linked from report.md, embedded in audit.html; capped, escaped, and safe against
a report.json that names files it should not."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import numpy as np
from audit_helpers import smooth_images, write_dataset
from PIL import Image
from test_audit_report import _two_datasets

from fixtures.release import ToyTask
from medimeta.audit.context import DatasetFacts
from medimeta.audit.gallery import THUMB, label_section, write_thumbnails
from medimeta.audit.labels import nearest
from medimeta.audit.run import AuditOptions, run_audit
from medimeta.format.reader import DatasetFolder
from medimeta.plots.audit_page import audit_page, write_audit_page

IMG = re.compile(r'<img src="data:image/jpeg;base64,([A-Za-z0-9+/=]+)" alt="([^"]*)"')


def _audit(root: Path, out: Path, **opts: object):
    options = AuditOptions(labels=False, cache=out.parent / "cache", **opts)  # type: ignore[arg-type]
    run = run_audit(root, [], out, options, log=lambda _m: None)
    write_audit_page(out, run.report)
    return run


def test_pairs_and_leaks_are_pictured(root: Path, tmp_path: Path) -> None:
    _two_datasets(root)
    out = tmp_path / "out"
    run = _audit(root, out)
    gallery = json.loads((out / "report.json").read_text(encoding="utf-8"))["gallery"]
    kinds = [(s["kind"], s["title"]) for s in gallery["sections"]]
    assert kinds == [
        ("within", "Duplicates within big"),
        ("across", "Images shared by big and small"),
        ("subjects", "Subjects of big in two splits (patient_id)"),
    ]
    within, across, subjects = gallery["sections"]
    (pair,) = within["items"]
    a, b = pair["images"]
    assert (a["dataset"], a["index"], a["split"], b["index"], b["split"]) == (
        "big", 3, "train", 20, "test",
    )  # fmt: skip
    assert pair["crosses_splits"] and pair["kind"] == "near" and pair["score"] >= 0.95
    assert a["label"] == "cat b" and b["label"] == "cat a" and pair["labels_differ"]
    assert [(i["images"][0]["index"], i["images"][1]["index"]) for i in across["items"]] == [
        (5, 0),
        (9, 1),
    ]
    assert across["total"] == 2 and across["left_out"] == 0
    assert subjects["total"] == 6 and len(subjects["items"]) == 6
    assert {r["split"] for r in subjects["items"][0]["images"]} == {"train", "test"}
    files = sorted(p.name for p in (out / "pictures").iterdir())
    assert len(files) == gallery["files"] == 15  # 18 pictured, big #20 twice
    for name in files:  # small JPEG thumbnails of the stored 224 px images
        data = (out / "pictures" / name).read_bytes()
        assert data[:3] == b"\xff\xd8\xff"
        with Image.open(io.BytesIO(data)) as img:
            assert img.size == (THUMB, THUMB)
    assert run.files["pictures"] == out / "pictures"


def test_the_page_embeds_every_thumbnail(root: Path, tmp_path: Path) -> None:
    _two_datasets(root)
    out = tmp_path / "out"
    _audit(root, out)
    page = (out / "audit.html").read_text(encoding="utf-8")
    found = IMG.findall(page)
    assert len(found) == page.count("<img") == 2 + 4 + 12
    on_disk = {p.read_bytes() for p in (out / "pictures").iterdir()}
    assert {base64.b64decode(data) for data, _ in found} == on_disk
    assert ("big #3 (train, cat b)") in {alt for _, alt in found}
    assert 'src="pictures/' not in page  # embedded, not linked: the page can be moved
    assert 'id="pictures-1"' in page and "crosses splits: train / test; labels differ" in page
    moved = tmp_path / "elsewhere.html"
    moved.write_text(page, encoding="utf-8")  # still whole without the folder beside it
    assert IMG.findall(moved.read_text(encoding="utf-8")) == found


def test_report_md_links_the_page_and_the_pictures(root: Path, tmp_path: Path) -> None:
    _two_datasets(root)
    out = tmp_path / "out"
    _audit(root, out)
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "Pictures: [audit.html](audit.html)" in md and "## Pictures" in md
    assert "![big #3](pictures/big-3.jpg) big #3 · train · cat b" in md
    assert "[on the page](audit.html#pictures-1)" in md
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", md)
    assert links and all(not link.startswith(("/", "http")) for link in links)
    assert all((out / link).exists() for link in links)  # every relative link resolves
    quiet = tmp_path / "no-html"
    run_audit(root, [], quiet, AuditOptions(labels=False, html_page=False), log=lambda _m: None)
    assert "audit.html" not in (quiet / "report.md").read_text(encoding="utf-8")


def test_sections_are_capped_and_say_what_they_left_out(root: Path, tmp_path: Path) -> None:
    _two_datasets(root)
    out = tmp_path / "out"
    _audit(root, out, pictures=1)
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    across = next(s for s in report["gallery"]["sections"] if s["kind"] == "across")
    assert (across["shown"], across["left_out"], len(across["items"])) == (1, 1, 1)
    assert across["items"][0]["images"][0]["index"] == 5  # the best score first
    page = (out / "audit.html").read_text(encoding="utf-8")
    assert "1 of 2 pairs shown (highest score first); 1 left out (all in pairs.csv)." in page
    assert "1 of 6 leaking subjects shown" in page
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "1 of 2 pairs shown (highest score first); 1 left out (all in pairs.csv)" in md
    assert len(list((out / "pictures").iterdir())) == 6  # a pair from each section
    _audit(root, out, pictures=0)  # no pictures: the earlier thumbnails are removed
    assert list((out / "pictures").iterdir()) == []
    assert "No pictures: nothing to show, or --pictures 0." in (out / "audit.html").read_text(
        encoding="utf-8"
    )


HOSTILE = ToyTask(
    "kind", "MULTICLASS_CLASSIFICATION", {0: "<img src=x onerror=alert(1)>|", 1: "*b*"}
)


def test_labels_and_ids_are_escaped(root: Path, tmp_path: Path) -> None:
    images = smooth_images(8, seed=50)
    images[5] = images[1]
    patients = ['<script>alert("p")</script>'] * 2 + [f"P{i}" for i in range(6)]
    splits = ["train", "test", "train", "train", "train", "test", "train", "test"]
    write_dataset(root, "evil", images, task=HOSTILE, patients=patients, splits=splits)
    out = tmp_path / "out"
    _audit(root, out)
    page = (out / "audit.html").read_text(encoding="utf-8")
    assert "<script" not in page and "<img src=x" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;|" in page
    assert "subject &lt;script&gt;alert(&quot;p&quot;)&lt;/script&gt;" in page
    assert page.count("<img") == len(IMG.findall(page))  # only our embedded thumbnails
    md = (out / "report.md").read_text(encoding="utf-8").split("## Pictures")[1]
    assert "<img src=x" not in md and "&lt;img src=x onerror=alert(1)&gt;\\|" in md
    assert "<script>" not in md and "\\*b\\*" in md


def test_the_page_reads_only_its_own_thumbnails(root: Path, tmp_path: Path) -> None:
    _two_datasets(root)
    out = tmp_path / "out"
    run = _audit(root, out)
    secret = tmp_path / "secret.jpg"
    secret.write_bytes((out / "pictures" / "big-3.jpg").read_bytes())
    report = json.loads(json.dumps(run.report, default=str))
    refs = report["gallery"]["sections"][0]["items"][0]["images"]
    refs[0]["file"] = "../secret.jpg"  # outside the audit folder
    refs[1]["file"] = "pictures/big-20.jpg"
    (out / "pictures" / "big-20.jpg").write_bytes(b"not a picture")
    page = audit_page(report, folder=out)
    assert page.count("picture missing") == 3  # big #20 is in a subject's pair too
    assert page.count("<img") == 18 - 3
    assert "Pictures left out: no audit folder to read them from was given." in audit_page(report)
    del report["gallery"]  # a report.json of an earlier version
    assert "No pictures: this report was written before" in audit_page(report, folder=out)


def _clusters(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (labels.max() + 1, 16)) * 4
    return (centres[labels] + rng.normal(0, 1, (labels.size, 16))).astype(np.float32)


def test_nearest_neighbours_by_cosine_similarity() -> None:
    feats = np.array([[1, 0], [0.9, 0.1], [0, 1], [-1, 0], [0.5, 0.5]], np.float32)
    near, sims = nearest(feats, np.array([0, 2]), k=2)
    assert near.tolist() == [[1, 4], [4, 1]]
    assert sims[0, 0] > sims[0, 1] and np.all(near != np.array([[0], [2]]))
    none, _ = nearest(feats[:1], np.array([0]))
    assert none.shape == (1, 0)


def test_suspect_labels_are_pictured_with_their_neighbours(root: Path, tmp_path: Path) -> None:
    from medimeta.audit.labels import suspect_task

    three = ToyTask("kind", "MULTICLASS_CLASSIFICATION", {0: "x", 1: "y", 2: "z"})
    true = np.arange(60) % 3
    given = true.copy()
    given[[4, 17]] = (true[[4, 17]] + 1) % 3
    path = write_dataset(root, "noisy", smooth_images(60, seed=40), labels=list(given), task=three)
    facts = DatasetFacts(DatasetFolder(path))
    result = suspect_task(facts, facts.tasks()[0], _clusters(true))
    example = next(e for e in result["examples"] if e["index"] == 4)
    assert len(example["neighbours"]) == 4
    assert all(n["given"] == "y" and n["index"] % 3 == 1 for n in example["neighbours"])
    assert example["given"] == "z" and example["predicted"] == "y"
    section = label_section(facts, result, cap=1)
    assert section is not None and section["shown"] == 1
    assert section["left_out"] == result["issues"] - 1
    (item,) = section["items"]
    assert len(item["images"]) == 5 and item["images"][0]["predicted"]
    assert [r["similarity"] for r in item["images"][1:]] == sorted(
        (r["similarity"] for r in item["images"][1:]), reverse=True
    )
    assert write_thumbnails(tmp_path, [section], {"noisy": facts}) == 5
    assert all((tmp_path / r["file"]).is_file() for r in item["images"])
