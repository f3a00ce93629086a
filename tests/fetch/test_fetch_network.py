"""The quick network check before any fetch (medimeta.fetch.network)."""

from __future__ import annotations

import contextlib
import socket
import time

import pytest

from medimeta.errors import DownloadError, NetworkUnavailableError
from medimeta.fetch import network


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*network.OFFLINE_ENVS, network.PROBE_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(network, "_answers", {})


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("env", network.OFFLINE_ENVS)
def test_offline_mode_answers_at_once(env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert network.offline_reason() is None and network.offline_reason(True) == "--offline"
    monkeypatch.setenv(env, "1")
    assert network.offline_reason() == f"{env}=1"
    t0 = time.perf_counter()
    with pytest.raises(NetworkUnavailableError, match=f"offline \\({env}=1\\)"):
        network.require_network("https://zenodo.org/api/records/1")
    assert time.perf_counter() - t0 < 0.1


def test_a_refused_connection_is_no_network_and_is_remembered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/file.zip"
    with pytest.raises(NetworkUnavailableError, match="ConnectionRefusedError") as caught:
        network.require_network(url)
    assert isinstance(caught.value, DownloadError)  # callers that catch downloads catch it
    calls = []
    monkeypatch.setattr(network, "probe", lambda *a, **k: calls.append(a) or "asked again")
    with pytest.raises(NetworkUnavailableError, match="ConnectionRefusedError"):
        network.require_network(url)  # the answer of a moment ago: no second probe
    assert calls == []


def test_the_probe_waits_probe_s_or_what_the_environment_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert network.probe_seconds() == network.PROBE_S == 1.0
    monkeypatch.setenv(network.PROBE_ENV, "7.5")
    assert network.probe_seconds() == 7.5
    for bad in ("", "abc", "0", "-3"):
        monkeypatch.setenv(network.PROBE_ENV, bad)
        assert network.probe_seconds() == network.PROBE_S


def test_an_unanswered_connection_says_how_to_wait_longer() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = [socket.socket() for _ in range(4)]
    try:
        for filler in fillers:  # the queue fills; later connections are never answered
            filler.settimeout(0.2)
            with contextlib.suppress(OSError):
                filler.connect(("127.0.0.1", port))
        t0 = time.perf_counter()
        why = network.probe(f"http://127.0.0.1:{port}/", timeout=0.5)
        assert time.perf_counter() - t0 < 1.5
        assert why is not None and f"{network.PROBE_ENV}=10" in why, why
    finally:
        for s in [*fillers, server]:
            s.close()
