"""Fixtures of the download tests: a local Zenodo stand-in and release zips."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fetch_helpers import dataset_zip
from fetch_server import ZenodoStub

RECORD = "7884735"


@pytest.fixture(autouse=True)
def _no_proxy_no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Requests to 127.0.0.1 must never go through a proxy; no mirror leaks in from outside."""
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "MEDIMETA_MIRROR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def stub() -> Iterator[ZenodoStub]:
    server = ZenodoStub().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def toy_zip() -> bytes:
    """A valid release zip of dataset ``toy_a`` (with the ``toy_a/`` top folder)."""
    return dataset_zip("toy_a")


@pytest.fixture
def fast(stub: ZenodoStub) -> dict[str, object]:
    """Fetch options for tests: the stub as mirror, quick retries, no progress bars."""
    return {"mirror": stub.base, "backoff": 0.01, "retries": 3, "timeout": 10.0, "quiet": True}
