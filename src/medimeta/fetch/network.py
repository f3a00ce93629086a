"""Is the network there? One quick answer before anything is fetched.

Without a network a download would otherwise spend its retries (and a name look-up or a
dropped connection can take a minute each) before failing. Every fetch first asks
:func:`require_network`: offline mode (``--offline``, ``MEDIMETA_OFFLINE=1`` or
``HF_HUB_OFFLINE=1``) answers at once; otherwise one TCP connection to the host (or to the
proxy that urllib would use) must open within :data:`PROBE_S` seconds (``$MEDIMETA_PROBE_S``
on a slow link), name look-up included, so that a command without a network fails in about a
second instead of after its DNS and connection retries.
A failure raises :class:`~medimeta.errors.NetworkUnavailableError` naming the host and why;
the caller adds the fix (a mirror, ``--from FILE``, the cache folder to copy files into).
Answers are kept for a minute per host, so a run fetching many files asks once.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import urllib.request
from urllib.parse import urlparse

from medimeta.errors import NetworkUnavailableError

#: Variables that switch every fetch off (huggingface_hub's own, and the toolkit's).
OFFLINE_ENVS = ("MEDIMETA_OFFLINE", "HF_HUB_OFFLINE")
#: Seconds a connection to the host may take to open, name look-up included (a working link
#: answers in well under a second; ``$MEDIMETA_PROBE_S`` gives a slow one more).
PROBE_S = 1.0
PROBE_ENV = "MEDIMETA_PROBE_S"
_KEEP_S = 60.0
_TRUE = ("1", "true", "yes", "on")
_answers: dict[tuple[str, int], tuple[float, str | None]] = {}


def offline_reason(offline: bool = False) -> str | None:
    """Why fetching is off (``"MEDIMETA_OFFLINE=1"``, ``"--offline"``), or None."""
    for env in OFFLINE_ENVS:
        if os.environ.get(env, "").strip().lower() in _TRUE:
            return f"{env}={os.environ[env]}"
    return "--offline" if offline else None


def _address(url: str) -> tuple[str, int]:
    """Where a request for ``url`` connects first: the host, or urllib's proxy for it."""
    parsed = urlparse(url)
    host = parsed.hostname or ""
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    proxy = urllib.request.getproxies().get(parsed.scheme or "http")
    if proxy and not urllib.request.proxy_bypass(host):
        via = urlparse(proxy if "://" in proxy else f"http://{proxy}")
        return via.hostname or host, via.port or (443 if via.scheme == "https" else 80)
    return host, port


def probe_seconds() -> float:
    """How long :func:`probe` waits: ``$MEDIMETA_PROBE_S`` when it is a positive number, else
    :data:`PROBE_S`."""
    try:
        value = float(os.environ.get(PROBE_ENV, ""))
    except ValueError:
        return PROBE_S
    return value if value > 0 else PROBE_S


def probe(url: str, timeout: float | None = None) -> str | None:
    """None when a TCP connection for ``url`` opens within ``timeout`` seconds (default:
    :func:`probe_seconds`; name look-up included; a thread bounds a resolver that would
    hang); else why not."""
    timeout = probe_seconds() if timeout is None else timeout
    host, port = _address(url)
    slow = f"no answer within {timeout:g} s; on a slow link set {PROBE_ENV}=10"
    result: list[str | None] = []

    def attempt() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(None)
        except TimeoutError:
            result.append(slow)
        except OSError as exc:
            text = exc.strerror or str(exc) or type(exc).__name__
            result.append(f"{type(exc).__name__}: {text}")

    worker = threading.Thread(target=attempt, name="medimeta-probe", daemon=True)
    worker.start()
    worker.join(timeout + 0.25)
    return result[0] if result else slow


def require_network(url: str, offline: bool = False) -> None:
    """Return when ``url``'s host can be reached; else NetworkUnavailableError (at once when
    offline, within :func:`probe_seconds` otherwise)."""
    why = offline_reason(offline)
    if why is not None:
        raise NetworkUnavailableError(f"offline ({why}): {url} is not fetched")
    key = _address(url)
    now = time.monotonic()
    kept = _answers.get(key)
    if kept is None or now - kept[0] > _KEEP_S:
        kept = (now, probe(url))
        _answers[key] = kept
    if kept[1] is not None:
        host = f"{key[0]}:{key[1]}"
        raise NetworkUnavailableError(
            f"cannot reach {host} ({kept[1]}): no network here, or the host is blocked"
        )
