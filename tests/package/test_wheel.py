"""The package as a wheel: built from a copy of the checkout, installed (``--no-deps``) into a
fresh virtual environment that borrows this environment's dependencies, and run from there.

It proves what a source checkout hides: the package data (catalog/*.yaml with prompts.yaml,
models/hf/backbones.yaml) is in the wheel, the ``medimeta`` script works, and the install hints
of an installed wheel name the distribution's real name (pyproject.toml's [project] name).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from medimeta.errors import DISTRIBUTION, package_extras, source_checkout

REPO = Path(__file__).resolve().parents[2]
DATA = (
    "medimeta/catalog/datasets.yaml",
    "medimeta/catalog/prompts.yaml",
    "medimeta/models/hf/backbones.yaml",
    "medimeta/py.typed",
)


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, f"{args}:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def wheel_env(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A venv holding only the built wheel; the dependencies come from this environment."""
    try:
        import setuptools  # noqa: F401  (--no-build-isolation builds with this environment's)
    except ImportError:
        pytest.fail("building the wheel needs setuptools (the dev extra installs it)")
    base = tmp_path_factory.mktemp("wheel")
    src = base / "checkout"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    shutil.copytree(REPO / "src", src / "src", ignore=ignore)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    _run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(base / "dist"), str(src)],
         env, base)  # fmt: skip
    (wheel,) = (base / "dist").glob("*.whl")
    venv = base / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], env, base)
    python = venv / "bin" / "python"
    install = ["install", "--no-deps", "--no-index", str(wheel)]
    _run([*pip, "--python", str(python), *install], env, base)
    # this environment's packages (torch, typer, ...) after the venv's own; a path listed in a
    # .pth file has its own .pth files ignored, so an editable install of the checkout stays out
    purelib = Path(
        _run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            env,
            base,
        ).stdout.strip()
    )
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (purelib / "zz_borrowed.pth").write_text("\n".join(sorted(ours)) + "\n", encoding="utf-8")
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["COLUMNS"] = "250"  # rich tables on one line each
    return venv, env


@pytest.mark.timeout(300)
def test_wheel_holds_the_package_data_and_its_script_runs(
    wheel_env: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    venv, env = wheel_env
    (wheel,) = (venv.parent / "dist").glob("*.whl")
    assert wheel.name.startswith(DISTRIBUTION.replace("-", "_") + "-")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert set(DATA) <= names, sorted(set(DATA) - names)
    assert not any(n.startswith(("tests/", "benchmarks/")) for n in names)
    where = _run([str(venv / "bin" / "python"), "-c", "import medimeta; print(medimeta.__file__)"],
                 env, tmp_path).stdout  # fmt: skip
    assert str(venv) in where  # the wheel's copy, not the checkout
    script = str(venv / "bin" / "medimeta")
    assert "Usage: medimeta" in _run([script, "--help"], env, tmp_path).stdout
    listing = _run([script, "backbones", "list"], env, tmp_path).stdout
    assert "dinov2_vitb14" in listing and "biomedclip" in listing.lower()
    assert "dr_regular" in _run([script, "list"], env, tmp_path).stdout  # catalog yaml
    prompts = "from medimeta.train.fewshot.prompts import builtin_sets; print(builtin_sets())"
    _run([str(venv / "bin" / "python"), "-c", prompts], env, tmp_path)


def test_an_installed_wheel_hints_at_its_own_distribution(
    wheel_env: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    venv, env = wheel_env
    code = "from medimeta.errors import install_hint; print(install_hint('vision'))"
    hint = _run([str(venv / "bin" / "python"), "-c", code], env, tmp_path).stdout.strip()
    assert hint == f"pip install '{DISTRIBUTION}[vision]' (installs torchvision, timm)"


def test_hints_in_the_checkout_install_the_checkout() -> None:
    from medimeta.errors import install_hint

    assert source_checkout() == REPO
    extras = package_extras()
    assert {"sources", "models", "vision", "audit", "cluster", "dev"} <= set(extras)
    assert f'name = "{DISTRIBUTION}"' in (REPO / "pyproject.toml").read_text(encoding="utf-8")
    hint = install_hint("audit")
    assert hint.startswith(f"cd {REPO} && pip install -e '.[audit]' (installs cleanlab)")
    assert f"make -C {REPO} setup" in hint  # the dev extra holds cleanlab too
    assert "make" not in install_hint("vision")  # torchvision is not in the dev extra


def test_every_hint_in_the_sources_comes_from_the_one_helper() -> None:
    """No module writes its own `pip install 'medimeta-toolkit[...]'`: the extras' names and
    the command come from pyproject.toml through MissingDependencyError.for_extra."""
    extras = set(package_extras())
    offenders = []
    for path in sorted((REPO / "src" / "medimeta").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if "pip install '" in text and path.name != "errors.py":
            offenders.append(str(path.relative_to(REPO)))
        for used in __import__("re").findall(r'for_extra\(\s*"(\w+)"', text):
            assert used in extras, f"{path}: unknown extra {used!r}"
    assert not offenders, offenders
