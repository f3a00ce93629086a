"""A tiny NIH ChestX-ray14 download: ``CXR8/`` with three ``images_00N.tar.gz`` archives.

Layout and columns as published::

    CXR8/images/images_001.tar.gz   (members images/<Image Index>.png)
    CXR8/Data_Entry_2017_v2020.csv  (Image Index, Finding Labels, Follow-up #, Patient ID,
                                     Patient Age, Patient Gender, View Position,
                                     OriginalImage[Width,Height], OriginalImagePixelSpacing[x,y])
    CXR8/BBox_List_2017.csv         (Image Index, Finding Label, Bbox [x,y,w,h] + empty columns)
    CXR8/train_val_list.txt, CXR8/test_list.txt, CXR8/README_CHESTXRAY.pdf

The second archive stores its members out of name order (so only the archive's own order lets
it be read in one pass) and one image is RGBA (as 519 real ones are).
"""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from fakes import fake_pixels

# patient id -> (sex, list of finding strings); patients 1-4 train_val, 5-6 test
PATIENTS = {
    1: ("M", ["No Finding", "Atelectasis|Effusion", "Cardiomegaly"]),
    2: ("F", ["Infiltration", "No Finding"]),
    3: ("F", ["Pleural_Thickening|Hernia|Mass", "Nodule"]),
    4: ("M", ["Pneumonia|Pneumothorax", "Consolidation|Edema|Emphysema|Fibrosis"]),
    5: ("M", ["No Finding", "Effusion"]),
    6: ("F", ["Mass|Nodule"]),
}
TEST_PATIENTS = {5, 6}
HEADER = (
    "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,"
    "View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]"
)


@dataclass
class FakeCxr:
    root: Path
    findings: dict[str, str] = field(default_factory=dict)
    sex: dict[str, str] = field(default_factory=dict)
    patient: dict[str, int] = field(default_factory=dict)
    archive_of: dict[str, str] = field(default_factory=dict)
    test: set[str] = field(default_factory=set)
    rgba: str = ""


def _png(name: str, seed: int, rgba: bool) -> bytes:
    arr = fake_pixels(256, 256, 4 if rgba else 1, seed)
    buf = io.BytesIO()
    Image.fromarray(arr, "RGBA" if rgba else "L").save(buf, format="PNG")
    return buf.getvalue()


def make_cxr_tree(root: Path, *, extracted: bool = False) -> FakeCxr:
    """Write ``root/CXR8``; ``extracted=True`` writes the PNGs instead of the tar.gz archives."""
    base = root / "CXR8"
    fake = FakeCxr(base)
    rows, names = [HEADER], []
    seed = 0
    for patient, (sex, findings) in PATIENTS.items():
        for follow_up, finding in enumerate(findings):
            name = f"{patient:08d}_{follow_up:03d}.png"
            names.append(name)
            fake.findings[name], fake.sex[name], fake.patient[name] = finding, sex, patient
            if patient in TEST_PATIENTS:
                fake.test.add(name)
            view = "PA" if follow_up % 2 == 0 else "AP"
            rows.append(f"{name},{finding},{follow_up},{patient},{40 + patient},{sex},{view},"
                        f"2500,2048,0.143,0.143")  # fmt: skip
            seed += 1
    fake.rgba = names[4]
    archives = [names[0:5], names[5:10], names[10:]]
    for k, members in enumerate(archives, start=1):
        ordered = list(reversed(members)) if k == 2 else members  # archive 2 is out of order
        contents = {n: _png(n, names.index(n), n == fake.rgba) for n in ordered}
        for n in ordered:
            fake.archive_of[n] = f"images_{k:03d}.tar.gz"
        if extracted:
            for n, data in contents.items():
                target = base / "images" / "images" / n
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            continue
        target = base / "images" / f"images_{k:03d}.tar.gz"
        target.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(target, "w:gz") as tf:
            for n, data in contents.items():
                info = tarfile.TarInfo(f"images/{n}")
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    (base / "Data_Entry_2017_v2020.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    boxes = [
        "Image Index,Finding Label,Bbox [x,y,w,h],,,",
        f"{names[1]},Atelectasis,225.08,547.02,86.79,79.19,,,",
        f"{names[1]},Effusion,686.0,363.0,203.0,189.0,,,",
        f"{names[5]},Mass,10.5,20.25,30.0,40.0,,,",
    ]
    (base / "BBox_List_2017.csv").write_text("\n".join(boxes) + "\n", encoding="utf-8")
    train_val = [n for n in names if n not in fake.test]
    (base / "train_val_list.txt").write_text("\n".join(train_val) + "\n", encoding="utf-8")
    (base / "test_list.txt").write_text("\n".join(sorted(fake.test)) + "\n", encoding="utf-8")
    (base / "README_CHESTXRAY.pdf").write_bytes(b"%PDF-1.4 fake")
    return fake
