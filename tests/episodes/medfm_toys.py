"""Small MedFMC trees (ChestDR, Endo, ColonPath) with MedFM few-shot lists in MedFM's format.

The folder holds what openmedlab/MedFM ships per dataset (``data_anns/MedFMC/<ds>/``):
``images/``, ``trainval.txt``, ``test_WithLabel.txt`` and ``<ds>_<N>-shot_{train,val}_exp<K>.txt``.
Few-shot lists follow ``tools/generate_few-shot_file.py``:

* chest: per class, N random images positive for it (an image positive for two chosen classes
  is written twice);
* endo: per class, N random studies (first 18 characters of the name) with an image positive
  for it, and all their images positive for it;
* colon: N positive and N negative slides (name minus its last 9 characters), all their patches
  of that label;
* val: up to ``val_size`` random trainval images not in the support.

Lines are MedFM's: chest ``name.png 1,0,...`` (19 values), endo ``name.png 1 0 0 1``, colon
``name with spaces.png 0``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fixtures.writing import write_image
from medimeta.convert.medfmc import MEDFMC, convert_medfmc, parse_line


def _chest_labels(n: int) -> list[list[int]]:
    rows = []
    for i in range(n):
        hot = {i % 19, (i + 5) % 19}  # 57 images: >= 6 positives per class
        if i % 3 == 0:
            hot.add((i * 7 + 3) % 19)
        rows.append([int(c in hot) for c in range(19)])
    return rows


def _names(key: str, train: int, test: int) -> list[str]:
    if key == "chest":
        return [f"chest_{i:04d}.png" for i in range(train + test)]
    if key == "endo":  # 5 frames per study; the study id is the first 18 characters
        return [f"study_{i // 5:012d}_frame {i % 5}.png" for i in range(train + test)]
    # colon: 4 patches per slide, "<slide id>_0001.png" (9 characters after the slide id)
    return [f"slide {chr(65 + i // 4)} x_{i % 4 + 1:04d}.png" for i in range(train + test)]


def _labels(key: str, n: int, rng: np.random.Generator) -> list[object]:
    if key == "chest":
        return list(_chest_labels(n))
    if key == "endo":
        rows = rng.integers(0, 2, (n, 4))
        rows[np.arange(n), np.arange(n) % 4] = 1  # every class has positives
        return rows.tolist()
    return [int(v) for v in (np.arange(n) + np.arange(n) // 4) % 2]  # mixed slides


def line(key: str, name: str, label: object) -> str:
    """One list line in MedFM's format."""
    if key == "chest":
        return f"{name} {','.join(map(str, label))}"  # type: ignore[call-overload]
    if key == "endo":
        return f"{name} {' '.join(map(str, label))}"  # type: ignore[call-overload]
    return f"{name} {label}"


def _support(
    key: str, shots: int, names: list[str], labels: list[object], rng: np.random.Generator
) -> list[int]:
    """Row numbers (into trainval) of one few-shot train list, in list order."""
    info = MEDFMC[key]
    study = [info.study(n) for n in names]
    rows: list[int] = []
    if key == "colon":
        classes: list[int] = [1, 0]
    else:
        classes = list(range(len(info.labels)))
    for c in classes:

        def has(i: int, c: int = c) -> bool:
            lab = labels[i]
            return bool(lab[c]) if isinstance(lab, list) else lab == c

        if key == "chest":
            pos = [i for i in range(len(names)) if has(i)]
            rows += sorted(rng.choice(pos, shots, replace=False).tolist())
            continue
        studies = sorted({study[i] for i in range(len(names)) if has(i)})
        picked = set(rng.choice(studies, shots, replace=False).tolist())
        rows += [i for i in range(len(names)) if study[i] in picked and has(i)]
    return rows


def write_medfmc(
    base: Path,
    key: str,
    *,
    train: int | None = None,
    test: int | None = None,
    shots: tuple[int, ...] = (1, 5),
    experiments: int = 2,
    val_size: int = 12,
    seed: int = 0,
) -> Path:
    """A MedFMC folder ``base/<key>`` with images, trainval/test lists and few-shot lists
    (``train`` / ``test`` images: default 57 / 19 for chest, 40 / 12 otherwise)."""
    folder = base / key
    train = train or (57 if key == "chest" else 40)
    test = test or (19 if key == "chest" else 12)  # chest: a positive of every class
    rng = np.random.default_rng(seed)
    names = _names(key, train, test)
    labels = _labels(key, train + test, rng)
    mode = "L" if key == "chest" else "RGB"
    for i, name in enumerate(names):
        write_image(folder / "images" / name, (12, 10), mode, seed=i)
    text = [line(key, n, lab) for n, lab in zip(names, labels, strict=True)]
    (folder / "trainval.txt").write_text("".join(t + "\n" for t in text[:train]))
    (folder / "test_WithLabel.txt").write_text("".join(t + "\n" for t in text[train:]))
    for n in shots:
        for k in range(1, experiments + 1):
            rows = _support(key, n, names[:train], labels[:train], rng)
            pool = [i for i in range(train) if i not in set(rows)]
            val = rng.permutation(pool)[:val_size].tolist()
            (folder / f"{key}_{n}-shot_train_exp{k}.txt").write_text(
                "".join(text[i] + "\n" for i in rows)
            )
            (folder / f"{key}_{n}-shot_val_exp{k}.txt").write_text(
                "".join(text[i] + "\n" for i in val)
            )
    return folder


def list_names(path: Path, key: str) -> list[str]:
    """File names of a list of dataset ``key``, line by line (names may contain spaces)."""
    count = 4 if key == "endo" else 1
    return [raw.rsplit(None, count)[0] for raw in path.read_text().splitlines() if raw.strip()]


def make_medfmc(base: Path, root: Path, key: str, **options: object) -> Path:
    """Write the MedFMC folder and convert it into ``root``; returns the lists folder."""
    folder = write_medfmc(base, key, **options)  # type: ignore[arg-type]
    convert_medfmc(folder, root)
    return folder


def fake_from_lists(
    base: Path, key: str, lists: list[Path], *, test: int = 24, seed: int = 0
) -> Path:
    """A MedFMC folder ``base/<key>`` whose images are named as in the given MedFM lists
    (copied beside them unchanged): every image of a train or val list is in trainval.txt
    with the label the lists give it (the same in every list, as in MedFM's release), and a
    generated, labelled test list of ``test`` images (MedFM publishes no labelled test list:
    only ``test_WithoutLabel.txt``). The images are generated pixels."""
    import shutil

    info = MEDFMC[key]
    folder = base / key
    folder.mkdir(parents=True, exist_ok=True)
    labels: dict[str, object] = {}
    for path in lists:
        for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not text.strip():
                continue
            name, label = parse_line(info, text, f"{path}:{number}")
            if labels.setdefault(name, label) != label:
                raise ValueError(f"{path}:{number}: {name} has two labels in the lists")
        shutil.copyfile(path, folder / path.name)
    rng = np.random.default_rng(seed)
    test_names = [
        f"test {i:04d}_0001.png" if key == "colon" else f"test_{i:04d}_{'x' * 12}.png"
        for i in range(test)
    ]
    test_labels = _labels(key, test, rng)
    mode = "L" if key == "chest" else "RGB"
    names = [*labels, *test_names]
    for i, name in enumerate(names):
        write_image(folder / "images" / name, (12, 10), mode, seed=i)
    (folder / "trainval.txt").write_text("".join(line(key, n, v) + "\n" for n, v in labels.items()))
    test_text = [line(key, n, v) for n, v in zip(test_names, test_labels, strict=True)]
    (folder / "test_WithLabel.txt").write_text("".join(t + "\n" for t in test_text))
    return folder
